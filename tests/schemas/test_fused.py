"""The fused event encoder writes what ``to_record`` + fastavro write, for any event."""

from __future__ import annotations

import json
from enum import IntEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import compiled, fused, registry
from schemas.compiled import Fallback, Unsupported
from tests.schemas import strategies
from tests.schemas.reference import UUID, reference_event, sample_events, traffic_events

ENCODE = fused.compile_event_encoder(registry.current(registry.AUDIT_EVENT))
CHAIN = "ab" * 32


def fused_event(raw: str, event: Any, chain: str | None, seq: int | None) -> bytes | None:
    """The fused body, or None where it hands the event to the reference."""
    try:
        return ENCODE(UUID, raw, event, chain, seq, b"")
    except Fallback:
        return None


def assert_same(raw: str, event: Any, chain: str | None = CHAIN, seq: int | None = 7) -> None:
    expected = reference_event(raw, event, chain, seq)
    got = fused_event(raw, event, chain, seq)
    if isinstance(expected, bytes):
        assert got is None or got == expected
    else:
        assert got is None, f"reference raises {expected.__name__}, fused wrote bytes"


def test_every_sample_event_is_byte_identical_on_the_fast_path() -> None:
    for raw in sample_events():
        event = orjson.loads(raw)
        assert fused_event(raw, event, CHAIN, 1) == reference_event(raw, event, CHAIN, 1)
        assert fused_event(raw, event, None, None) == reference_event(raw, event)


def test_held_out_traffic_is_byte_identical_on_the_fast_path(tmp_path: Path) -> None:
    events = traffic_events(tmp_path, 3000, seed=20261207)
    classes = set()
    for seq, raw in enumerate(events):
        event = orjson.loads(raw)
        classes.add(event["class"])
        assert fused_event(raw, event, CHAIN, seq) == reference_event(raw, event, CHAIN, seq)
    assert {"connection", "general", "table_access"} <= classes


def test_a_header_is_prepended_unchanged() -> None:
    raw = sample_events()[2]
    body = ENCODE(UUID, raw, orjson.loads(raw), None, None, b"")
    assert ENCODE(UUID, raw, orjson.loads(raw), None, None, b"HEAD") == b"HEAD" + body


@pytest.mark.parametrize(
    "event",
    [
        {"timestamp": "2024-01-01 00:00:00", "id": 2**63, "class": "general", "event": "status"},
        {"timestamp": "2024-01-01 00:00:00", "id": -1, "class": "general", "event": "status"},
        {"timestamp": "2024-01-01T00:00:00", "id": 1, "class": "general", "event": "status"},
        {"timestamp": "2024-01-01 00:00:00", "id": True, "class": "general", "event": "status"},
        {"timestamp": "2024-01-01 00:00:00", "id": 1, "class": None, "event": "status"},
        {"timestamp": None, "id": 1, "class": "general", "event": "status"},
    ],
)
def test_events_the_reference_refuses_are_left_to_it(event: dict[str, Any]) -> None:
    assert isinstance(reference_event("{}", event), type)  # the reference raises ...
    assert fused_event("{}", event, None, None) is None  # ... and the fused path never answers


def test_a_schema_field_without_a_source_disables_fusing() -> None:
    schema = dict(registry.current(registry.AUDIT_EVENT))
    schema["fields"] = [*schema["fields"], {"name": "new_field", "type": ["null", "string"]}]
    with pytest.raises(Unsupported, match="new_field"):
        fused.compile_event_encoder(schema)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    event=strategies.events(),
    ascii_only=st.booleans(),
    chain=st.one_of(st.none(), st.just(CHAIN), strategies.texts),
    seq=st.one_of(st.none(), strategies.ints),
)
def test_any_event_gives_the_reference_bytes_or_is_left_to_the_reference(
    event: dict[str, Any], ascii_only: bool, chain: str | None, seq: int | None
) -> None:
    raw = strategies.raw_text(event, ascii_only)
    assert_same(raw, event, chain, seq)


@settings(max_examples=300, deadline=None)
@given(event=strategies.events())
def test_events_of_plain_json_values_take_the_fast_path(event: dict[str, Any]) -> None:
    # Not only "never wrong": every event the reference encodes, with values JSON parsers
    # produce (no str/int subclasses, no non-dict mappings), is encoded without the reference.
    raw = strategies.raw_text(event, ascii_only=True)
    expected = reference_event(raw, event, CHAIN, 5)
    if isinstance(expected, bytes):
        assert fused_event(raw, event, CHAIN, 5) == expected


@pytest.mark.parametrize("where", ["general_data", "table_access_data"])
def test_a_1_mb_query_is_byte_identical(where: str) -> None:
    query = ("SELECT 'é😀“x”' FROM t WHERE a = 1 -- " * 30000)[: 1 << 20]
    event = {"timestamp": "2024-01-01 00:00:00", "id": 5, "class": "general", "event": "status",
             where: {"sql_command": "select", "query": query, "status": 0}}  # fmt: skip
    raw = json.dumps(event, ensure_ascii=False)
    assert len(raw.encode()) > 1 << 20
    assert fused_event(raw, event, CHAIN, 1) == reference_event(raw, event, CHAIN, 1)


class _Sub(str):
    pass


@pytest.mark.parametrize(
    "event",
    [
        MappingProxyType({"timestamp": "2024-01-01 00:00:00", "id": 1, "class": "a", "event": "b"}),
        {"timestamp": "2024-01-01 00:00:00", "id": 1, "class": _Sub("a"), "event": "b"},
        {
            "timestamp": "2024-01-01 00:00:00",
            "id": 1,
            "class": "a",
            "event": "b",
            "account": MappingProxyType({"user": _Sub("u")}),
        },
        {
            "timestamp": "2024-01-01 00:00:00",
            "id": 1,
            "class": "a",
            "event": "b",
            "login": {"user": _Sub("u")},
            "connection_data": {"status": IntEnum("E", "X").X},
        },
    ],
)
def test_unusual_python_types_are_left_to_the_reference_or_match_it(event: Any) -> None:
    assert_same("{}", event)


def test_a_changed_type_of_a_fixed_field_disables_fusing() -> None:
    schema = dict(registry.current(registry.AUDIT_EVENT))
    schema["fields"] = [
        {**f, "type": ["null", "string"]} if f["name"] == "chain_seq" else f
        for f in schema["fields"]
    ]
    with pytest.raises(Unsupported, match="chain_seq"):
        fused.compile_event_encoder(schema)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=strategies.events(), ascii_only=st.booleans())
def test_raw_as_its_utf8_bytes_gives_the_same_bytes(
    event: dict[str, Any], ascii_only: bool
) -> None:
    """The producer passes the page's bytes as ``raw``: the same value as the text's."""
    raw = strategies.raw_text(event, ascii_only)
    try:
        data = raw.encode()
    except UnicodeEncodeError:
        return  # a lone surrogate: no UTF-8 page can hold it
    assert fused_event(data, event, CHAIN, 3) == fused_event(raw, event, CHAIN, 3)  # type: ignore[arg-type]
    expected = reference_event(raw, event, CHAIN, 3)
    if isinstance(expected, bytes):
        assert fused_event(data, event, CHAIN, 3) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("bits", range(64))
def test_table_varints_equal_the_loop_at_every_length_boundary(bits: int) -> None:
    for n in {2**bits - 1, 2**bits, 2**bits + 1, -(2**bits), -(2**bits) - 1, 1796623738}:
        if -(2**63) <= n < 2**63:
            assert fused._zigzag(n) == compiled.long(n), n
            assert fused._tagged_long(n) == b"\x02" + compiled.long(n)
    assert fused._tagged_long(2**63) == fused._tagged_long(-(2**63) - 1) == b"\x00"


@pytest.mark.parametrize(
    "seq", [0, 1, 8191, 8192, 16383, 16384, 2**26, 2**27 - 1, 2**27, 2**40, 2**63 - 1, -1, 2**63]
)
def test_chain_seq_and_id_at_the_inline_boundaries_are_the_references(seq: int) -> None:
    raw = sample_events()[2]
    assert_same(raw, orjson.loads(raw), CHAIN, seq)
    assert fused_event(raw, orjson.loads(raw), CHAIN, seq) is not None or seq >= 2**63
    event = {**orjson.loads(raw), "id": seq}
    assert_same(raw, event, CHAIN, 5)
    assert fused_event(raw, event, CHAIN, 5) is not None or not 0 <= seq < 2**63


class _Name(str):
    """A str subclass: never looked up in or added to the string cache."""


def test_cached_strings_repeat_evict_and_refuse_like_the_reference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Values of the cached fields, repeated, evicted (a tiny cache), long, odd or unencodable."""
    monkeypatch.setattr(fused._StringCache, "MAX", 3)
    encode = fused.compile_event_encoder(registry.current(registry.AUDIT_EVENT))
    users = ["app", "dba", "app", "ünï", "", "x" * 300, _Name("app"), "app", "\ud800", "dba"]
    hosts = ["%", "10.0.0.1", "%", "%", "h" * 257, "%"]
    seen = 0
    for round_ in range(3):
        for i, user in enumerate(users):
            event = {
                "timestamp": "2024-01-01 00:00:00",
                "id": i,
                "class": ["general", "connection", _Name("general")][(i + round_) % 3],
                "event": "status",
                "account": {"user": user, "host": hosts[i % len(hosts)]},
                "login": {"user": user, "os": "", "ip": hosts[(i + 1) % len(hosts)]},
                "general_data": {"command": "Query", "sql_command": ["select", 3][i % 2]},
            }
            raw = json.dumps(event)
            expected = reference_event(raw, event, CHAIN, i)
            try:
                got: bytes | None = encode(UUID, raw, event, CHAIN, i, b"")
            except Fallback:
                got = None
            if isinstance(expected, bytes):
                assert got is None or got == expected, (round_, i)
                seen += got is not None
            else:
                assert got is None
    assert seen >= 12  # these took the fast path, through the cache
    for name in ("PLAIN", "TAGGED"):
        cache = encode.__globals__[name]
        assert 0 < len(cache) <= 3
        assert all(type(k) is str and len(k.encode()) <= 256 for k in cache)


PREFIX = fused.compile_event_prefix_encoder(registry.current(registry.AUDIT_EVENT))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=strategies.events(), ascii_only=st.booleans(), seq=st.integers(0, 2**63 - 1))
def test_the_prefix_and_the_tail_are_the_encoders_value(
    event: dict[str, Any], ascii_only: bool, seq: int
) -> None:
    """``prefix + event_tail(chain, seq)`` is the full encoder's value; both fall back alike."""
    raw = strategies.raw_text(event, ascii_only)
    try:
        whole: bytes | None = ENCODE(UUID, raw, event, CHAIN, seq, b"H")
    except Fallback:
        whole = None
    try:
        prefix: bytes | None = PREFIX(UUID, raw, event, None, None, b"H")
    except Fallback:
        prefix = None
    assert (prefix is None) == (whole is None)
    if prefix is not None:
        assert prefix + fused.event_tail(CHAIN, seq) == whole


def test_the_prefix_needs_the_chain_fields_last() -> None:
    schema = registry.current(registry.AUDIT_EVENT)
    fields = schema["fields"]
    moved = {**schema, "fields": [*fields[:-3], fields[-2], fields[-1], fields[-3]]}
    with pytest.raises(Unsupported):
        fused.compile_event_prefix_encoder(moved)
    for raw in sample_events():
        event = orjson.loads(raw)
        assert PREFIX(UUID, raw, event, None, None, b"") + fused.event_tail(CHAIN, 9) == (
            reference_event(raw, event, CHAIN, 9)
        )
