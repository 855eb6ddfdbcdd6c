"""The generated codec against fastavro: same bytes, same records, same refusals."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import fastavro
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import compiled, registry
from tests.schemas import strategies
from tests.schemas.reference import UUID, fastavro_body, fastavro_record, sample_events

NAMES = (registry.AUDIT_EVENT, registry.CONTROL_EVENT)
CODECS = {name: compiled.compile_record(registry.current(name)) for name in NAMES}
_SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_aware = st.datetimes(
    min_value=datetime(1, 1, 2),  # noqa: DTZ001 - hypothesis takes naive bounds
    max_value=datetime(9999, 12, 30),  # noqa: DTZ001
    timezones=strategies.zones(),
)
_BY_KIND: dict[str, st.SearchStrategy[Any]] = {
    "string": strategies.texts,
    "long": strategies.ints,
    "double": st.one_of(strategies.floats, st.integers(-(2**53), 2**53)),
    "timestamp-millis": st.one_of(_aware, strategies.ints, st.datetimes()),
    "map": st.one_of(
        st.dictionaries(strategies.texts, strategies.texts, max_size=20),
        st.dictionaries(strategies.texts, strategies.scalars, max_size=2),
    ),
    "array": st.one_of(
        st.lists(strategies.texts, max_size=20), st.lists(strategies.scalars, max_size=2)
    ),
}


@st.composite
def records(draw: st.DrawFn, name: str) -> dict[str, Any]:
    """A record of schema ``name``: mostly well typed; sometimes a field of another type, a
    bool, a naive datetime, or a missing field (each a case fastavro has its own rule for)."""
    out: dict[str, Any] = {}
    for field, nullable, kind in compiled.record_fields(registry.current(name)):
        fate = draw(st.integers(0, 29))
        if fate == 0:
            continue
        if fate == 1:
            out[field] = draw(strategies.json_values)
        elif nullable and fate < 12:
            out[field] = None
        else:
            out[field] = draw(_BY_KIND[kind])
    return out


def generated_body(name: str, record: dict[str, Any]) -> bytes | None:
    try:
        return CODECS[name][0](record, b"")
    except compiled.Fallback:
        return None


def reference_body(name: str, record: dict[str, Any]) -> bytes | None:
    try:
        return fastavro_body(name, record)
    except Exception:
        return None


@pytest.mark.parametrize("name", NAMES)
@_SETTINGS
@given(data=st.data())
def test_generated_encode_writes_fastavro_bytes_or_falls_back(
    name: str, data: st.DataObject
) -> None:
    record = data.draw(records(name))
    got = generated_body(name, record)
    if got is not None:
        assert got == reference_body(name, record)


@pytest.mark.parametrize("name", NAMES)
@_SETTINGS
@given(data=st.data())
def test_generated_decode_reads_what_fastavro_reads(name: str, data: st.DataObject) -> None:
    record = data.draw(records(name))
    body = reference_body(name, record)
    if body is None:
        return
    try:
        expected = fastavro_record(name, body)
    except Exception:  # fastavro refuses it (a timestamp beyond datetime's range): so must we
        with pytest.raises(compiled.Fallback):
            CODECS[name][1](body)
        return
    back = CODECS[name][1](body)
    assert repr(back) == repr(expected)  # repr: NaN equals itself, tzinfo and types count


@pytest.mark.parametrize("name", NAMES)
@_SETTINGS
@given(data=st.data())
def test_a_damaged_body_decodes_as_fastavro_decodes_it_or_falls_back(
    name: str, data: st.DataObject
) -> None:
    record = data.draw(records(name))
    body = reference_body(name, record)
    if body is None:
        return
    at = data.draw(st.integers(0, len(body)))
    damage = data.draw(st.sampled_from(["cut", "flip", "insert"]))
    noise = data.draw(st.binary(min_size=1, max_size=3))
    if damage == "cut":
        body = body[:at]
    elif damage == "flip":
        body = body[:at] + noise + body[at + len(noise) :]
    else:
        body = body[:at] + noise + body[at:]
    try:
        back = CODECS[name][1](body)
    except compiled.Fallback:
        return  # the codec asks fastavro, whose answer (or error) is the reference by definition
    assert repr(back) == repr(fastavro_record(name, body))


def test_well_typed_records_take_the_fast_path() -> None:
    import orjson

    from schemas.mapping import to_record

    for raw in sample_events():
        record = to_record(UUID, raw, orjson.loads(raw), chain="0" * 64, chain_seq=2**62)
        body = CODECS[registry.AUDIT_EVENT][0](record, b"")
        assert body == fastavro_body(registry.AUDIT_EVENT, record)
        assert CODECS[registry.AUDIT_EVENT][1](body) == fastavro_record(registry.AUDIT_EVENT, body)
    gap = {"server_uuid": UUID, "kind": "gap", "at": datetime(2024, 1, 1, tzinfo=UTC),
           "reason": "oversized", "from_id": 3, "lag_seconds": 1.5, "events": None}  # fmt: skip
    gap |= {f: None for f, _, _ in compiled.record_fields(registry.current("control_event"))
            if f not in gap}  # fmt: skip
    body = CODECS[registry.CONTROL_EVENT][0](gap, b"")
    assert body == fastavro_body(registry.CONTROL_EVENT, gap)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "record", "name": "R", "fields": [{"name": "a", "type": "int"}]},
        {"type": "record", "name": "R", "fields": [{"name": "a", "type": ["string", "null"]}]},
        {
            "type": "record",
            "name": "R",
            "fields": [{"name": "a", "type": ["null", "long", "string"]}],
        },
        {
            "type": "record",
            "name": "R",
            "fields": [{"name": "a", "type": {"type": "map", "values": "long"}}],
        },
        {"type": "enum", "name": "E", "symbols": ["A"]},
    ],
)
def test_schemas_outside_the_generator_are_refused(schema: dict[str, Any]) -> None:
    with pytest.raises(compiled.Unsupported):
        compiled.compile_record(fastavro.parse_schema(schema))


def test_longs_at_the_64_bit_edges_match_fastavro() -> None:
    schema = fastavro.parse_schema(
        {"type": "record", "name": "R", "fields": [{"name": "a", "type": "long"}]}
    )
    encode, decode = compiled.compile_record(schema)
    for n in (0, 1, -1, 63, 64, -64, -65, 16383, 16384, 2**62, 2**63 - 1, -(2**63)):
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, schema, {"a": n})
        assert encode({"a": n}, b"") == buf.getvalue()
        assert decode(buf.getvalue()) == {"a": n}
    for n in (2**63, -(2**63) - 1):
        with pytest.raises(compiled.Fallback):
            encode({"a": n}, b"")


@pytest.mark.parametrize(
    "when",
    [
        datetime(2020, 1, 1, 0, 0, 0, 999999, tzinfo=UTC),
        datetime(2020, 1, 1, 0, 0, 0, 500, tzinfo=UTC),
        datetime(1960, 1, 1, 0, 0, 0, 999, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999500, tzinfo=UTC),
        datetime(1, 1, 2, 0, 0, 0, 500, tzinfo=timezone(timedelta(hours=5))),
        datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-7))),
    ],
)
def test_sub_millisecond_times_are_cut_as_fastavro_cuts_them(when: datetime) -> None:
    record = {"server_uuid": UUID, "kind": "gap", "at": when}
    record |= {f: None for f, _, _ in compiled.record_fields(registry.current("control_event"))
               if f not in record}  # fmt: skip
    body = CODECS[registry.CONTROL_EVENT][0](record, b"")
    assert body == fastavro_body(registry.CONTROL_EVENT, record)
    assert CODECS[registry.CONTROL_EVENT][1](body) == fastavro_record(registry.CONTROL_EVENT, body)
