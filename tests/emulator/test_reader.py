"""``audit_log_read`` page rules on a log directory, without the protocol."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulator.logfile import AuditLogWriter
from emulator.logindex import AuditLogIndex
from emulator.reader import ReadSequence, UdfError, parse_argument

TS = "2024-01-01 00:00:00"


@pytest.fixture
def writer(tmp_path: Path):
    w = AuditLogWriter(tmp_path, clock=lambda: TS)
    yield w
    w.close()


def seq(writer: AuditLogWriter, flavor: str = "oracle") -> ReadSequence:
    return ReadSequence(AuditLogIndex(writer.directory), flavor)  # type: ignore[arg-type]


def write(writer: AuditLogWriter, n: int, size: int = 10) -> list[bytes]:
    raws = []
    for _ in range(n):
        ts, ident = writer.write({"class": "general", "event": "status", "q": "x" * size})
        raws.append(
            f'{{ "timestamp": "{ts}", "id": {ident}, "class": "general", "event": "status", "q": "{"x" * size}" }}'.encode()
        )
    return raws


def bookmark(ident: int) -> str:
    return json.dumps({"timestamp": TS, "id": ident})


def test_page_is_the_files_bytes_in_an_array(writer: AuditLogWriter) -> None:
    raws = write(writer, 3)
    page = seq(writer).read(bookmark(0), 32768)
    assert page.payload == b"[\n" + b",\n".join(raws) + b",\nnull\n]"
    assert json.loads(page.payload)[-1] is None and page.events == 3


def test_pages_fill_the_buffer_with_whole_events_and_continue(writer: AuditLogWriter) -> None:
    raws = write(writer, 100, size=1000)
    reader = seq(writer)
    pages = [reader.read(bookmark(0), 32768)]
    while not pages[-1].payload.endswith(b"null\n]"):
        pages.append(reader.read(None, 32768))
    assert all(len(p.payload) <= 32768 for p in pages)
    assert len(pages[0].payload) > 32768 - len(raws[0]) - 4, "a page is filled as far as it goes"
    events = [e for p in pages for e in json.loads(p.payload) if e is not None]
    assert [e["id"] for e in events] == list(range(100))
    with pytest.raises(UdfError) as info:
        reader.read(None, 32768)
    assert (info.value.errno, info.value.message) == (
        3200,
        "audit_log_read UDF failed; Reader not initialized.",
    )


def test_oracle_skips_an_oversized_event_with_a_warning(writer: AuditLogWriter) -> None:
    write(writer, 1)
    write(writer, 1, size=40_000)
    write(writer, 1)
    page = seq(writer).read(bookmark(0), 32768)
    assert [e and e["id"] for e in json.loads(page.payload)] == [0, 2, None]
    assert len(page.warnings) == 1
    w = page.warnings[0]
    assert (w.level, w.code) == ("Warning", 1301)
    assert f'"timestamp": "{TS}", "id": 1' in w.message


def test_percona_returns_an_oversized_event_whole_and_alone(tmp_path: Path) -> None:
    w = AuditLogWriter(tmp_path, flavor="percona", clock=lambda: TS)
    try:
        write(w, 1)
        write(w, 1, size=40_000)
        reader = seq(w, "percona")
        first = json.loads(reader.read(bookmark(0), 32768).payload)
        assert [e["id"] for e in first] == [0]
        second = reader.read(None, 32768)
        assert len(second.payload) > 40_000 and not second.warnings
        assert json.loads(second.payload)[0]["id"] == 1
    finally:
        w.close()


def test_max_array_length_stops_without_null(writer: AuditLogWriter) -> None:
    write(writer, 3)
    reader = seq(writer)
    page = json.loads(
        reader.read(json.dumps({"timestamp": TS, "id": 0, "max_array_length": 3}), 32768).payload
    )
    assert [e["id"] for e in page] == [0, 1, 2]
    assert json.loads(reader.read(None, 32768).payload) == [None]


def test_oracle_bookmark_positions_at_or_after_percona_needs_exact(tmp_path: Path) -> None:
    for flavor, expected in (("oracle", [None]), ("percona", [None])):
        w = AuditLogWriter(tmp_path / flavor, flavor=flavor, clock=lambda: TS)  # type: ignore[arg-type]
        try:
            write(w, 2)
            page = json.loads(seq(w, flavor).read(bookmark(7), 32768).payload)
            assert page == expected
            early = json.loads(
                seq(w, flavor)
                .read(json.dumps({"timestamp": "2023-12-31 23:59:59", "id": 5}), 32768)
                .payload
            )
            assert ([e and e["id"] for e in early] == [0, 1, None]) == (flavor == "oracle")
        finally:
            w.close()


def test_read_position_survives_rotation_with_gzip(tmp_path: Path) -> None:
    w = AuditLogWriter(tmp_path, compress=True, clock=lambda: TS)
    try:
        write(w, 4)
        reader = seq(w)
        first = json.loads(
            reader.read(
                json.dumps({"timestamp": TS, "id": 0, "max_array_length": 2}), 32768
            ).payload
        )
        w.rotate()
        write(w, 2)
        rest = json.loads(reader.read(None, 32768).payload)
        assert [e["id"] for e in first] + [e and e["id"] for e in rest] == [0, 1, 2, 3, 4, 5, None]
    finally:
        w.close()


@pytest.mark.parametrize(
    ("arg", "errno"),
    [
        ("{bad json", 3200),
        ("[1, 2]", 3200),
        ('{"timestamp": "2024-01-01 00:00:00"}', 3200),
        ('{"id": 1}', 3200),
        ('{"timestamp": "yesterday", "id": 1}', 3200),
        ('{"timestamp": "2024-01-01 00:00:00", "id": -1}', 3200),
        (
            '{"start": {"timestamp": "2024-01-01"}, "timestamp": "2024-01-01 00:00:00", "id": 0}',
            3200,
        ),
        ('{"start": "2024-01-01"}', 3200),
        ('{"max_array_length": 0}', 3218),
        ('{"max_array_length": "3"}', 3218),
    ],
)
def test_malformed_arguments_get_the_servers_errors(arg: str, errno: int) -> None:
    with pytest.raises(UdfError) as info:
        parse_argument(arg)
    assert info.value.errno == errno and info.value.sqlstate == "HY000"


def test_start_date_alone_means_midnight_and_unknown_keys_are_ignored() -> None:
    args = parse_argument('{"start": {"timestamp": "2024-02-03"}, "colour": "blue"}')
    assert args.start == "2024-02-03 00:00:00" and args.bookmark is None


def test_irregular_separators_still_give_exact_pages_within_the_buffer(tmp_path: Path) -> None:
    events = [f'{{ "timestamp": "{TS}", "id": {i}, "q": "{"y" * 3000}" }}' for i in range(40)]
    seps = [",\r\n", " ,\n", ",\n\n", "\n", ",  \n"]
    body = "[\n" + "".join(e + seps[i % len(seps)] for i, e in enumerate(events))
    (tmp_path / "audit.log").write_text(body)
    reader = ReadSequence(AuditLogIndex(tmp_path))
    pages = [reader.read(bookmark(0), 32768).payload]
    while not pages[-1].endswith(b"null\n]"):
        pages.append(reader.read(None, 32768).payload)
    assert all(len(p) <= 32768 for p in pages)
    got = [raw for p in pages for raw in p[2:-2].split(b",\n") if raw != b"null"]
    assert got == [e.encode() for e in events]


def test_a_pruned_file_mid_sequence_continues_with_the_next(tmp_path: Path) -> None:
    w = AuditLogWriter(tmp_path, clock=lambda: TS)
    try:
        write(w, 3)
        first = w.rotate()
        write(w, 3)
        w.rotate()
        write(w, 1)
        reader = seq(w)
        page = json.loads(
            reader.read(
                json.dumps({"timestamp": TS, "id": 0, "max_array_length": 1}), 32768
            ).payload
        )
        assert [e["id"] for e in page] == [0]
        assert first is not None
        first.unlink()  # pruned before the reader got to its other events
        rest = json.loads(reader.read(None, 32768).payload)
        assert [e and e["id"] for e in rest] == [3, 4, 5, 6, None]
    finally:
        w.close()


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=50_000), min_size=1, max_size=40),
    buffer=st.sampled_from([32768, 65536, 100_000]),
    limit=st.one_of(st.none(), st.integers(min_value=1, max_value=7)),
    flavor=st.sampled_from(["oracle", "percona"]),
)
def test_pages_partition_the_log_exactly(tmp_path_factory, sizes, buffer, limit, flavor) -> None:
    directory = tmp_path_factory.mktemp("prop")
    w = AuditLogWriter(directory, flavor=flavor, clock=lambda: TS)
    try:
        raws = [r for size in sizes for r in write(w, 1, size=size)]
    finally:
        w.close()
    reader = ReadSequence(AuditLogIndex(directory), flavor)
    arg = {"timestamp": TS, "id": 0} | ({"max_array_length": limit} if limit else {})
    pages = [reader.read(json.dumps(arg), buffer)]
    while not pages[-1].payload.endswith(b"null\n]"):
        pages.append(
            reader.read(json.dumps({"max_array_length": limit}) if limit else None, buffer)
        )
        assert len(pages) < 200
    got, skipped = [], 0
    for p in pages:
        body = p.payload[2:-2]
        got += [raw for raw in body.split(b",\n") if raw and raw != b"null"]
        skipped += len(p.warnings)
        assert limit is None or p.events <= limit
        if flavor == "oracle" or p.events > 1:
            assert len(p.payload) <= buffer
    fits = [r for r in raws if len(r) + 4 <= buffer]
    if flavor == "oracle":
        assert got == fits and skipped == len(raws) - len(fits)
    else:
        assert got == raws and skipped == 0


# Percona 8.4.10+ / 9.x: audit_log_read() re-encodes events (emulator.perconatext).

PRETTY_FILE = (
    b'[\n  {\n    "timestamp": "2024-01-01 00:00:00",\n    "id": 7,\n    "class": "general",\n'
    b'    "account": { "user": "app", "host": "%" },\n'
    b'    "general_data": {\n      "query": "SELECT \'a\\/b\', \\"q\\", \'},\\n{\'\\t\\u0001 \\u00e9",\n'
    b'      "status": 0},\n    "rows": [1, 2.5, true, null]\n  }'
)
PAGE_EVENT = (
    '{"timestamp": "2024-01-01 00:00:00", "id": 7, "class": "general", '
    '"account": {"user": "app", "host": "%"}, '
    '"general_data": {"query": "SELECT \'a/b\', \\"q\\", \'},\\n{\'\\t\\u0001 \u00e9", '
    '"status": 0}, "rows": [1, 2.5, true, null]}'
).encode()


def test_percona_reencodes_a_pretty_printed_event_on_one_line() -> None:
    from emulator import perconatext

    event = PRETTY_FILE[2:]
    assert perconatext.event(event) == PAGE_EVENT
    compact = json.dumps(json.loads(event), separators=(",", ":")).encode()
    assert perconatext.event(compact) == PAGE_EVENT, "the file layout never shows in the page"


def test_percona_reencoding_page_text_and_budget(tmp_path: Path) -> None:
    w = AuditLogWriter(tmp_path, flavor="percona", layout="jsonl", clock=lambda: TS)
    try:
        for n in range(6):
            w.write({"class": "general", "q": "x" * 100 * n})
    finally:
        w.close()
    text = (tmp_path / "audit.log").read_text()
    assert text.startswith(
        '[\n{"timestamp":"2024-01-01 00:00:00","id":0,"class":"general","q":""},\n'
    )
    reader = ReadSequence(AuditLogIndex(tmp_path), "percona", reencode=True)
    events = [
        f'{{"timestamp": "{TS}", "id": {n}, "class": "general", "q": "{"x" * 100 * n}"}}'.encode()
        for n in range(6)
    ]
    whole = reader.read(bookmark(0), 32768)
    assert whole.payload == b"[\n" + b"".join(e + b",\n" for e in events) + b"null\n]\n"
    # a page that does not reach the end: no null, the last ",\n" taken off, a final newline
    two = ReadSequence(AuditLogIndex(tmp_path), "percona", reencode=True)
    page = two.read(json.dumps({"timestamp": TS, "id": 1, "max_array_length": 2}), 32768)
    assert page.payload == b"[\n" + events[1] + b",\n" + events[2] + b"\n]\n"
    # the budget: a later event only while the page stays 10 bytes under the buffer
    tight = ReadSequence(AuditLogIndex(tmp_path), "percona", reencode=True)
    size = 2 + len(events[3]) + 2 + len(events[4]) + 2 + 10
    assert tight.read(bookmark(3), size + 1).payload == (
        b"[\n" + events[3] + b",\n" + events[4] + b"\n]\n"
    )
    tight = ReadSequence(AuditLogIndex(tmp_path), "percona", reencode=True)
    assert tight.read(bookmark(3), size).payload == b"[\n" + events[3] + b"\n]\n"
    # the first event goes in whole whatever its size; a missing bookmark is [null]
    big = ReadSequence(AuditLogIndex(tmp_path), "percona", reencode=True)
    assert big.read(bookmark(5), 100).payload == b"[\n" + events[5] + b",\nnull\n]\n"
    gone = ReadSequence(AuditLogIndex(tmp_path), "percona", reencode=True)
    assert gone.read(bookmark(99), 32768).payload == b"[\nnull\n]\n"


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=50_000), min_size=1, max_size=30),
    buffer=st.sampled_from([32768, 65536]),
    limit=st.one_of(st.none(), st.integers(min_value=1, max_value=7)),
    layout=st.sampled_from(["json", "jsonl", "pretty"]),
)
def test_reencoded_pages_partition_the_log_exactly(
    tmp_path_factory, sizes, buffer, limit, layout
) -> None:
    directory = tmp_path_factory.mktemp("prop")
    w = AuditLogWriter(directory, flavor="percona", layout=layout, clock=lambda: TS)
    try:
        for size in sizes:
            w.write({"class": "general", "q": 'x\n"/' * (size // 4)})
    finally:
        w.close()
    reader = ReadSequence(AuditLogIndex(directory), "percona", reencode=True)
    arg = {"timestamp": TS, "id": 0} | ({"max_array_length": limit} if limit else {})
    pages = [reader.read(json.dumps(arg), buffer)]
    while not pages[-1].payload.endswith(b"null\n]\n"):
        pages.append(
            reader.read(json.dumps({"max_array_length": limit}) if limit else None, buffer)
        )
        assert len(pages) < 200
    ids = []
    for p in pages:
        assert p.payload.endswith(b"\n]\n") and b"\n" not in p.payload[2:-3].replace(b",\n", b"")
        body = json.loads(p.payload)
        ids += [e["id"] for e in body if e is not None]
        assert limit is None or p.events <= limit
        if p.events > 1:
            assert len(p.payload) < buffer
    assert ids == list(range(len(sizes)))
