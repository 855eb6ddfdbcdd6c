"""The fused readers give the reference row, identity and LOAD DATA line, or fall back.

Reference: fastavro decodes the body, then ``rows.identity``, ``rows.audit_row`` and
``rows.load_data_line`` build what the consumer writes. Both fused readers run on every input
here: the generated Python one and the compiled one (``consumer.nativerow``), which must give
the very same result or ``Fallback`` on the same input.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer import decode
from consumer.fastrow import compile_row_reader, native_row_reader
from consumer.rows import Identity, InvalidRecord, audit_row, identity, load_data_line
from schemas import registry
from schemas.compiled import Fallback, Unsupported
from schemas.mapping import to_record
from tests.schemas import strategies
from tests.schemas.reference import (
    UUID,
    fastavro_body,
    fastavro_record,
    sample_events,
    traffic_events,
)

READ = compile_row_reader(registry.current(registry.AUDIT_EVENT))
NATIVE = native_row_reader(registry.current(registry.AUDIT_EVENT))
CHAIN = "ab" * 32
HEADER = b"\xc3\x01" + b"\x07" * 8


def reference(body: bytes, partition: int, offset: int) -> tuple[Identity, tuple[Any, ...], str]:
    """What the consumer's reference path builds from ``body`` (or raises InvalidRecord)."""
    record = fastavro_record(registry.AUDIT_EVENT, body)
    ident = identity(record)
    row = audit_row(record, ident, partition, offset)
    return ident, row, load_data_line(row).encode()


def fused(body: bytes, partition: int, offset: int) -> tuple[Identity, tuple[Any, ...], str]:
    """Both fused readers on ``body`` framed like a message value (the body at offset 10).

    The compiled reader must give what the Python one gives, or ``Fallback`` where it does.
    """
    return both(HEADER + body, len(HEADER), partition, offset)


def both(value: bytes, start: int, partition: int, offset: int) -> Any:
    """Also the compiled reader's line-only mode: the same identity, server and line."""
    try:
        expected = READ(value, start, partition, offset)
    except Fallback:
        with pytest.raises(Fallback):
            NATIVE(value, start, partition, offset)
        with pytest.raises(Fallback):
            NATIVE.line(value, start, partition, offset)
        raise
    got = NATIVE(value, start, partition, offset)
    assert (got[0], got[2]) == (expected[0], expected[2])
    assert _comparable(got[1]) == _comparable(expected[1])
    assert NATIVE.line(value, start, partition, offset) == (expected[0], expected[1][0], got[2])
    return expected


def assert_same(record: dict[str, Any], partition: int = 3, offset: int = 12345) -> bool:
    """Equal to the reference, or Fallback where the reference refuses; True if fused."""
    body = fastavro_body(registry.AUDIT_EVENT, record)
    try:
        expected = reference(body, partition, offset)
    except InvalidRecord:
        with pytest.raises(Fallback):
            fused(body, partition, offset)
        return False
    got = fused(body, partition, offset)
    assert (got[0], got[2]) == (expected[0], expected[2])
    assert _comparable(got[1]) == _comparable(expected[1])
    return True


def _comparable(row: tuple[Any, ...]) -> list[Any]:
    """``row`` with NaN made equal to itself, types kept (1 == 1.0 must not pass)."""
    return [(type(v), "nan" if v != v else v) for v in row]


def test_every_sample_event_gives_the_reference_row_and_line() -> None:
    for raw in sample_events():
        event = orjson.loads(raw)
        assert assert_same(to_record(UUID, raw, event, chain=CHAIN, chain_seq=1))
        assert assert_same(to_record(UUID, raw, event), partition=0, offset=0)


def test_held_out_traffic_gives_the_reference_row_and_line(tmp_path: Path) -> None:
    events = traffic_events(tmp_path, 3000, seed=20261207)
    for seq, raw in enumerate(events):
        record = to_record(UUID, raw, orjson.loads(raw), chain=CHAIN, chain_seq=seq)
        assert assert_same(record, offset=seq)
    assert len(events) == 3000


def test_trailing_bytes_are_ignored_like_fastavro() -> None:
    raw = sample_events()[0]
    body = fastavro_body(registry.AUDIT_EVENT, to_record(UUID, raw, orjson.loads(raw)))
    assert fused(body + b"\x00junk", 1, 2) == reference(body, 1, 2)


def test_a_truncated_or_corrupt_body_falls_back_or_reads_as_fastavro() -> None:
    raw = sample_events()[0]
    body = fastavro_body(registry.AUDIT_EVENT, to_record(UUID, raw, orjson.loads(raw)))
    for cut in range(len(body)):
        with pytest.raises(Fallback):
            fused(body[:cut], 0, 0)
    for i in range(len(body)):
        for byte in (0x00, 0x05, 0x80, 0xFF):
            corrupt = body[:i] + bytes([byte]) + body[i + 1 :]
            try:
                expected = reference(corrupt, 0, 0)
            except Exception:  # whatever the reference refuses
                with pytest.raises(Fallback):
                    fused(corrupt, 0, 0)
                continue
            try:
                got = fused(corrupt, 0, 0)
            except Fallback:
                continue
            assert got == expected


@pytest.mark.parametrize(
    "ts",
    [
        datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(1000, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(2024, 5, 1, 12, 0, 0, 1000, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
    ],
)
def test_timestamps_at_and_beyond_the_limits(ts: datetime) -> None:
    raw = sample_events()[0]
    record = to_record(UUID, raw, orjson.loads(raw))
    record["timestamp"] = ts
    fast = assert_same(record)
    assert fast == (ts.year >= 1000 and not ts.microsecond)


@pytest.mark.parametrize("reader", [compile_row_reader, native_row_reader])
def test_a_schema_that_differs_from_the_columns_is_unsupported(reader: Any) -> None:
    schema = copy.deepcopy(registry.current(registry.AUDIT_EVENT))
    schema["fields"].append({"name": "extra", "type": ["null", "string"], "default": None})
    with pytest.raises(Unsupported):
        reader(schema)
    schema = copy.deepcopy(registry.current(registry.AUDIT_EVENT))
    next(f for f in schema["fields"] if f["name"] == "id")["type"] = "string"
    with pytest.raises(Unsupported):
        reader(schema)
    schema = copy.deepcopy(registry.current(registry.AUDIT_EVENT))
    next(f for f in schema["fields"] if f["name"] == "startup_args")["type"] = ["null", "string"]
    with pytest.raises(Unsupported):
        reader(schema)


def test_the_consumer_uses_the_compiled_reader() -> None:
    """CI's install builds it (make install): the fast path must not silently be the slow one."""
    assert type(decode._READ_ROW) is type(NATIVE)


def test_the_compiled_reader_refuses_a_plan_that_does_not_fit() -> None:
    from consumer import nativerow

    def plan(fields: Any, sources: Any, ts: int = 0, ident: int = 1) -> Any:
        return nativerow.RowReader(fields, sources, ts, ident, 0, 1, Fallback, Identity, 0, 0)

    longs = [(1, False, False), (1, False, False)]
    plan(longs, [-3, 1, -1, -2])
    for fields, sources, ts in (
        ([(9, False, False), *longs], [0], 1),  # no such kind
        ([(0, False, True), *longs], [0], 1),  # a string as JSON
        ([(3, True, False), *longs], [0], 1),  # a map not written as JSON
        (longs, [2], 0),  # no such field
        (longs, [-4], 0),  # no such source
        ([(1, True, False), (1, False, False)], [0], 0),  # a nullable timestamp
        ([(0, False, False), (1, False, False)], [0], 0),  # a string timestamp
    ):
        with pytest.raises(ValueError, match=r"\S"):
            plan(fields, sources, ts)
    with pytest.raises(ValueError, match="more than"):
        plan([(1, False, False)] * 200, [0])


_BODIES = [
    fastavro_body(registry.AUDIT_EVENT, to_record(UUID, raw, orjson.loads(raw), chain=CHAIN))
    for raw in sample_events()[:40]
]


@settings(max_examples=2000, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    body=st.sampled_from(_BODIES),
    edits=st.lists(
        st.tuples(st.integers(0, 10**6), st.binary(min_size=0, max_size=12)), max_size=4
    ),
)
def test_any_damaged_body_reads_alike_in_both_readers(
    data: st.DataObject, body: bytes, edits: list[tuple[int, bytes]]
) -> None:
    """Splices of bytes (varint edges, union tags, lengths, UTF-8) anywhere in real bodies."""
    edges = st.sampled_from(
        [b"\x00", b"\x02", b"\x01", b"\x80", b"\xff" * 9 + b"\x01", b"\xff" * 9 + b"\x02",
         b"\xff" * 10, b"\xed\xa0\x80", b"\xc3", b"\x5c", b"\x09\x0a"]
    )  # fmt: skip
    for at, blob in edits:
        blob = blob if data.draw(st.booleans()) else data.draw(edges)
        cut = at % (len(body) + 1)
        drop = data.draw(st.integers(0, 3))
        body = body[:cut] + blob + body[cut + drop :]
    with contextlib.suppress(Fallback):  # both readers refused it alike
        fused(body, 1, 2)


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(value=st.binary(max_size=400), start=st.integers(-2, 40))
def test_any_bytes_read_alike_in_both_readers(value: bytes, start: int) -> None:
    with contextlib.suppress(Fallback):  # both readers refused it alike
        both(value, start, 0, 0)


_special = st.sampled_from(["\\N", "\\", "\t", "\n", "\0", "a\\tb", "NULL", "", "é\x00\n", "\r"])
# Avro strings are UTF-8: a lone surrogate (which the shared ``strategies.texts`` draws on
# purpose, for the producer's JSON path) cannot be encoded by fastavro, so no message holds one.
_texts = st.one_of(
    strategies.texts.filter(lambda t: not any("\ud800" <= c <= "\udfff" for c in t)),
    _special,
    st.text(st.characters(codec="utf-8")),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    event=strategies.events(),
    chain=st.one_of(st.none(), st.just(CHAIN), _texts),
    seq=st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)),
    partition=st.integers(0, 2**31 - 1),
    offset=st.integers(0, 2**63 - 1),
)
def test_any_mapped_event_gives_the_reference(
    event: dict[str, Any], chain: str | None, seq: int | None, partition: int, offset: int
) -> None:
    raw = strategies.raw_text(event, ascii_only=False)
    try:
        record = to_record(UUID, raw, event, chain=chain, chain_seq=seq)
        fastavro_body(registry.AUDIT_EVENT, record)
    except (ValueError, OverflowError):  # the producer's reference refuses it: never sent
        return
    assert_same(record, partition, offset)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    ts=st.datetimes(
        min_value=datetime(1, 1, 2),  # noqa: DTZ001 - hypothesis bounds are naive
        max_value=datetime(9999, 12, 30),  # noqa: DTZ001
        timezones=strategies.zones(),
    ),
    uuid=_texts,
    ident=st.integers(-(2**63), 2**63 - 1),
)
def test_any_record_gives_the_reference(
    data: st.DataObject, ts: datetime, uuid: str, ident: int
) -> None:
    raw = sample_events()[data.draw(st.integers(0, len(sample_events()) - 1))]
    record = to_record(UUID, raw, orjson.loads(raw))
    record.update(server_uuid=uuid, timestamp=ts, id=ident, raw=data.draw(_texts))
    for name in list(record):
        if name in ("server_uuid", "timestamp", "id", "raw") or not data.draw(st.booleans()):
            continue
        if name in ("class", "event"):
            record[name] = data.draw(_texts)
        elif name in _STRINGS:
            record[name] = data.draw(st.one_of(st.none(), _texts))
        elif name in ("connection_attributes", "message_map"):
            record[name] = data.draw(st.none() | st.dictionaries(_texts, _texts, max_size=4))
        elif name == "startup_args":
            record[name] = data.draw(st.none() | st.lists(_texts, max_size=4))
        elif name == "query_time":
            record[name] = data.draw(st.none() | st.floats())
        else:
            record[name] = data.draw(st.none() | st.integers(-(2**63), 2**63 - 1))
    assert_same(record)


_STRINGS = {
    f["name"]
    for f in registry.current(registry.AUDIT_EVENT)["fields"]
    if f["type"] == ["null", "string"]
}


@pytest.mark.parametrize("char", ["\\", "\t", "\n", "\0"])
def test_one_escaped_character_in_any_one_string_column_gives_the_reference(char: str) -> None:
    """The reader tests all string columns at once: one character anywhere must be found."""
    raw = sample_events()[0]
    base = to_record(UUID, raw, orjson.loads(raw), chain=CHAIN, chain_seq=7)
    names = ["server_uuid", "class", "event", "raw", *sorted(_STRINGS)]
    for name in names:
        for value in (char, f"a{char}", f"{char}b", f"é{char}日😀"):
            record = copy.deepcopy(base)
            record[name] = value
            assert assert_same(record)
    for name, value in (
        ("connection_attributes", {"k": f"a{char}"}),  # JSON: a backslash in the column
        ("startup_args", [f"{char}"]),
        ("message_map", {f"{char}": "v"}),
    ):
        record = copy.deepcopy(base)
        record[name] = value
        assert assert_same(record)
    # and none: every column present, no escape anywhere
    assert assert_same({**base, **dict.fromkeys(_STRINGS, "plain é 日")})


_EDGES = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0,
          0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF]  # fmt: skip


def _decodes(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def test_the_line_readers_utf8_check_accepts_what_cpython_decodes_at_every_edge() -> None:
    """Every 1- to 4-byte sequence of the bytes where UTF-8's rules change, after ASCII runs
    of 0, 1 and 8 bytes (the check skips ASCII a word at a time)."""
    from consumer.nativerow import is_utf8

    for size in (1, 2, 3, 4):
        for seq in itertools.product(_EDGES, repeat=size):
            for prefix in (b"", b"x", b"abcdefgh"):
                data = prefix + bytes(seq)
                assert is_utf8(data) == _decodes(data), data


@settings(max_examples=3000, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=40) | st.text(max_size=40).map(lambda t: t.encode("utf-8", "replace")))
def test_the_line_readers_utf8_check_accepts_what_cpython_decodes(data: bytes) -> None:
    from consumer.nativerow import is_utf8

    assert is_utf8(data) == _decodes(data)
