"""Splitting ``audit_log_read`` pages: exact raw text, the trailing null, and every bad page."""

from __future__ import annotations

import hashlib

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditstream.errors import PageError
from auditstream.position import Position
from producer.page import decode_text, split
from tests.producer.conftest import make_events, sample_events


def page_of(events: list[str], *, null: bool = True, sep: str = ",\n") -> str:
    return "[" + sep.join([*events, "null"] if null else events) + "]"


def test_real_sample_splits_into_the_exact_event_texts() -> None:
    events = sample_events()
    page = split(page_of(events))
    assert page.exhausted
    assert [e.raw for e in page.events] == events
    assert [e.obj for e in page.events] == [orjson.loads(e) for e in events]
    assert all(e.error is None for e in page.events)
    assert page.events[2].pos == Position("2020-10-19 19:25:51", 1)


def test_page_without_null_continues_and_empty_forms() -> None:
    page = split(page_of(make_events(3), null=False))
    assert not page.exhausted and len(page.events) == 3
    assert split("[null]").exhausted and split("[null]").events == []
    assert split(" [ null ] \n").exhausted
    empty = split("[]")
    assert not empty.exhausted and empty.events == []


@pytest.mark.parametrize("sep", [",", ", ", ",\n", "\n,\n", " ,\t"])
def test_whitespace_between_events_is_allowed(sep: str) -> None:
    events = make_events(4)
    assert [e.raw for e in split(page_of(events, sep=sep)).events] == events


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not a JSON array"),
        ("null", "not a JSON array"),
        ('{"a": 1}', "not a JSON array"),
        ("audit_log_read UDF failed", "not a JSON array"),
        ('[{ "timestamp": "2024-01-01 00:00:00", "id": 0, "cla', "not JSON or is truncated"),
        ('[{"timestamp": "2024-01-01 00:00:00", "id": 0}', "truncated"),
        ('[{"timestamp": "2024-01-01 00:00:00", "id": 0},', "not JSON or is truncated"),
        ('[null, {"timestamp": "2024-01-01 00:00:00", "id": 0}]', "null is not the last"),
        ('[{"timestamp": "2024-01-01 00:00:00", "id": 0} {"a": 1}]', "garbage between"),
        ('[{"timestamp": "2024-01-01 00:00:00", "id": NaN}]', "not JSON"),
        ("[null] trailing", "garbage after"),
    ],
)
def test_unreadable_pages_are_page_errors(text: str, message: str) -> None:
    with pytest.raises(PageError, match=message):
        split(text, server_uuid="u")


def test_invalid_utf8_is_a_page_error_naming_the_byte() -> None:
    good = page_of(make_events(1)).encode()
    assert decode_text(good) == good.decode()
    with pytest.raises(PageError, match="not valid UTF-8 at byte 5"):
        decode_text(b'[{"a"\xff: 1}]')


@pytest.mark.parametrize(
    ("event", "error"),
    [
        ('{"id": 1, "class": "a", "event": "b"}', "timestamp missing"),
        ('{"timestamp": "2024-01-01T00:00:00", "id": 1}', "timestamp missing"),
        ('{"timestamp": 20240101, "id": 1}', "timestamp missing"),
        ('{"timestamp": "2024-01-01 00:00:01"}', "id missing"),
        ('{"timestamp": "2024-01-01 00:00:01", "id": "1"}', "id missing"),
        ('{"timestamp": "2024-01-01 00:00:01", "id": -1}', "id missing"),
        ('{"timestamp": "2024-01-01 00:00:01", "id": true}', "id missing"),
        ('{"timestamp": "2024-01-01 00:00:01", "id": 1.5}', "id missing"),
        ("[1, 2]", "not an object"),
        ('"text"', "not an object"),
    ],
)
def test_unidentifiable_event_is_kept_with_its_error_and_hash(event: str, error: str) -> None:
    good = make_events(2)
    page = split(page_of([good[0], event, good[1]]))
    assert [e.raw for e in page.events] == [good[0], event, good[1]]
    bad = page.events[1]
    assert bad.pos is None and bad.error is not None and error in bad.error
    assert bad.size() == len(event.encode())
    assert bad.sha256() == hashlib.sha256(event.encode()).hexdigest()


def test_duplicate_and_out_of_order_positions_are_page_errors() -> None:
    a, b, c = make_events(3)
    with pytest.raises(PageError, match="repeat or go back"):
        split(page_of([a, b, b]))
    with pytest.raises(PageError, match="repeat or go back"):
        split(page_of([a, c, b]))
    # ... and across pages of one sequence.
    last = split(page_of([a, b], null=False)).events[-1].pos
    with pytest.raises(PageError, match="repeat or go back"):
        split(page_of([b, c]), after=last)
    assert [e.raw for e in split(page_of([c]), after=last).events] == [c]


def test_oracle_ids_restart_every_second_and_still_order() -> None:
    events = make_events(9)  # ids 0,1,2,0,1,2,...
    page = split(page_of(events))
    ids = [e.pos.id for e in page.events if e.pos]
    assert ids == [0, 1, 2] * 3
    assert page.events == sorted(page.events, key=lambda e: e.pos or Position("", 0))


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@given(st.lists(st.tuples(_text, st.integers(0, 2**40)), min_size=1, max_size=20))
def test_any_string_content_survives_byte_for_byte(values: list[tuple[str, int]]) -> None:
    raws = []
    for i, (query, number) in enumerate(values):
        body = orjson.dumps({"query": query, "n": number, "nested": [query, {"q": query}]})
        raws.append(
            f'{{ "timestamp": "2024-01-01 00:00:{i // 3:02d}", "id": {i % 3}, '
            f'"x": {body.decode()} }}'
        )
    page = split(page_of(raws))
    assert [e.raw for e in page.events] == raws
    assert [e.obj["x"]["query"] for e in page.events] == [q for q, _ in values]


def server_layout(events: list[str], null: bool = True) -> str:
    """The layout servers (and the emulator) write: one element per line."""
    return "[\n" + ",\n".join([*events, "null"] if null else events) + "\n]"


@pytest.mark.parametrize(
    "extra",
    [
        None,
        '{"timestamp": "2024-01-01 00:00:09",\n "id": 0}',  # an event over two lines
        "[1, 2]",  # not an object
        '{ "timestamp": "2024-01-01 00:00:09", "id": 18446744073709551616 }',  # > 64 bits
        '{ "timestamp": "2024-01-01 00:00:09", "id": 0, "q": "\\ud800" }',  # lone surrogate
    ],
)
def test_both_layouts_give_the_same_events(extra: str | None) -> None:
    events = sample_events() + ([extra] if extra else [])
    fast = split(server_layout(events))
    general = split(page_of(events, sep=", "))
    assert [e.raw for e in fast.events] == [e.raw for e in general.events] == events
    assert [e.pos for e in fast.events] == [e.pos for e in general.events]
    assert [bool(e.error) for e in fast.events] == [bool(e.error) for e in general.events]
    # orjson reads an integer beyond 64 bits as a float (json: an int); both are invalid ids.
    assert [e.obj for e in fast.events[:-1]] == [e.obj for e in general.events[:-1]]
    assert fast.exhausted and general.exhausted
    assert not split(server_layout(events, null=False)).exhausted


def test_server_layout_null_alone_and_bad_pages() -> None:
    assert split("[\nnull\n]").exhausted
    with pytest.raises(PageError, match="null is not the last"):
        split(server_layout(["null", *make_events(1)], null=False))
    with pytest.raises(PageError, match="truncated"):
        split("[\n" + make_events(1)[0][:-3] + "\n]")


def percona_layout(events: list[str], null: bool = True) -> str:
    """Percona's reader page (json_reader/audit_json_handler.cc): final newline after ``]``."""
    if null:
        return "[\n" + "".join(e + ",\n" for e in events) + "null\n]\n"
    return "[\n" + ",\n".join(events) + "\n]\n"


PRETTY = (
    '{{\n    "timestamp": "2024-01-01 00:00:0{n}",\n    "id": {n},\n    "class": "general",\n'
    '    "general_data": {{\n      "query": "{q}",\n      "status": 0}}\n  }}'
)
TRAPS = [
    "SELECT 1",
    "SELECT '},\\n{' AS x",  # a separator-like text inside a string (escaped newline)
    "SELECT \\\"},\\n  {\\n\\\" FROM t\\nWHERE a = '\\\\n'",
    "SELECT '}\\u002c\\n{' -- ,\\n",
]


@pytest.mark.parametrize("null", [True, False])
def test_percona_pages_of_either_file_format_split_on_the_fast_path(null: bool) -> None:
    compact = [
        f'{{"timestamp": "2024-01-01 00:00:0{n}", "id": {n}, "general_data": {{"query": "{q}"}}}}'
        for n, q in enumerate(TRAPS)
    ]
    text = percona_layout(compact, null)
    page = split(text)
    assert [e.raw for e in page.events] == compact
    assert page.exhausted is null
    assert page.events[1].obj["general_data"]["query"] == "SELECT '},\n{' AS x"
    assert "".join(text.partition(page.events[2].raw)) == text  # raw is a span of the page
    assert split("[\nnull\n]\n").exhausted
    empty = split("[\n\n]\n")
    assert empty.events == [] and not empty.exhausted


@pytest.mark.parametrize("layout", [percona_layout, server_layout])
def test_pretty_printed_events_keep_their_lines_in_raw(layout) -> None:  # type: ignore[no-untyped-def]
    """A multi-line event (Percona's JSON file layout) comes back exactly, newlines and all."""
    events = ["  " + PRETTY.format(n=n, q=q) for n, q in enumerate(TRAPS)]
    page = split(layout(events))
    assert [e.raw for e in page.events] == [e.strip() for e in events]
    assert all(e.raw.count("\n") == 7 for e in page.events)
    assert [e.pos for e in page.events] == [
        Position(f"2024-01-01 00:00:0{n}", n) for n in range(len(TRAPS))
    ]
    assert page.events[1].obj["general_data"]["query"] == "SELECT '},\n{' AS x"
    assert page.exhausted


@given(st.lists(_text, min_size=1, max_size=12), st.booleans(), st.booleans())
def test_fast_and_general_paths_agree_on_any_query_text(
    queries: list[str], pretty: bool, null: bool
) -> None:
    """Whatever a query holds (``},\\n{``, quotes, newlines), both paths cut the same spans."""
    raws = []
    for i, q in enumerate(queries):
        members = {"timestamp": f"2024-01-01 00:00:{i:02d}", "id": i, "q": q}
        texts = [
            f"{orjson.dumps(k).decode()}: {orjson.dumps(v).decode()}" for k, v in members.items()
        ]
        raws.append(
            "{\n    " + ",\n    ".join(texts) + "\n  }" if pretty else "{" + ", ".join(texts) + "}"
        )
    text = percona_layout(raws, null)
    page = split(text)
    general = split(page_of(raws, null=null, sep=" , "))
    assert [e.raw for e in page.events] == [e.raw for e in general.events] == raws
    assert [e.obj["q"] for e in page.events] == queries
    assert page.exhausted is null
