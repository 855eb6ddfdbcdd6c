"""Property-based: event (any JSON text the server may write) ↔ Avro record ↔ ``audit_data`` row.

For every event hypothesis can think of (known and unknown keys, any key order and spacing,
any unicode, values of unexpected types and sizes): the record keeps the raw text exactly and
the event's identity; Avro encoding round-trips; the row carries the same identity and text.
An event that cannot be mapped fails with the documented error (the producer turns it into an
``invalid_event`` gap), never with anything else.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.rows import AUDIT_COLUMNS, audit_row, identity
from schemas.codec import SingleObjectCodec, decode
from schemas.mapping import InvalidEventError, format_timestamp, to_record

UUID = "6c1f8b5e-0d1c-11ef-9f1a-0242ac120002"
CODEC = SingleObjectCodec()
TOPIC = "mysql.audit.events"

text = st.text(st.characters(codec="utf-8"), max_size=40)  # no lone surrogates
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    text,
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)),
    max_leaves=12,
)
timestamps = st.datetimes(
    min_value=datetime(1970, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
    max_value=datetime(2200, 12, 31),  # noqa: DTZ001
).map(lambda d: d.replace(microsecond=0, tzinfo=UTC))
known = {
    "connection_id": st.one_of(st.integers(0, 2**64 - 1), values),
    "account": st.fixed_dictionaries({"user": text, "host": text}),
    "login": st.fixed_dictionaries({"user": text, "os": text, "ip": text, "proxy": text}),
    "general_data": st.fixed_dictionaries(
        {"command": text, "sql_command": text, "query": text, "status": st.integers(0, 9999)}
    ),
    "connection_data": st.fixed_dictionaries(
        {
            "connection_type": text,
            "status": st.integers(0, 9999),
            "db": text,
            "connection_attributes": st.dictionaries(text, text, max_size=3),
        }
    ),
    "query_statistics": st.fixed_dictionaries(
        {
            "query_time": st.floats(0, 1e6),
            "rows_sent": st.integers(0, 2**64 - 1),
            "rows_examined": st.integers(0, 2**64 - 1),
        }
    ),
}


@st.composite
def events(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """(raw text as a server could write it, the parsed event)."""
    event: dict[str, Any] = {
        "timestamp": format_timestamp(draw(timestamps)),
        "id": draw(st.integers(0, 2**64 - 1)),
        "class": draw(st.sampled_from(["general", "connection", "table_access", "brand_new"])),
        "event": draw(text),
    }
    for key, strategy in known.items():
        if draw(st.booleans()):
            event[key] = draw(strategy)
    event.update(draw(st.dictionaries(text.filter(lambda k: k not in event), values, max_size=3)))
    order = draw(st.permutations(list(event)))
    spaced = draw(st.booleans())
    raw = json.dumps(
        {k: event[k] for k in order},
        ensure_ascii=draw(st.booleans()),
        separators=(", ", ": ") if spaced else (",", ":"),
    )
    return raw, json.loads(raw)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events())
def test_event_to_avro_to_row_keeps_identity_and_raw_text(case: tuple[str, dict[str, Any]]) -> None:
    raw, event = case
    record = to_record(UUID, raw, event)
    assert record["raw"] == raw
    assert format_timestamp(record["timestamp"]) == event["timestamp"]
    assert record["id"] == event["id"]
    try:
        value = CODEC.encode("audit_event", record, TOPIC)
    except (ValueError, TypeError, OverflowError):
        # not encodable: the producer publishes an invalid_event gap (size + SHA-256) instead;
        # only an identity Avro cannot hold may cause that, never a flat convenience field
        assert record["id"] >= 2**63, f"an encodable identity was refused: {event!r}"
        return
    name, decoded = decode(value, TOPIC)
    assert name == "audit_event"
    assert decoded == record
    ident = identity(decoded)
    row = audit_row(decoded, ident, 3, 42)
    assert row[:3] == (UUID, record["timestamp"].replace(tzinfo=None), event["id"])
    assert row[AUDIT_COLUMNS.index("raw")] == raw
    assert row[AUDIT_COLUMNS.index("kafka_offset")] == 42


@given(st.one_of(values, st.dictionaries(text, values, max_size=3)))
def test_anything_without_an_identity_is_an_invalid_event(event: Any) -> None:
    if isinstance(event, dict):
        event.pop("timestamp", None)
    try:
        to_record(UUID, json.dumps(event), event)
    except InvalidEventError:
        return
    raise AssertionError(f"mapped an event without a timestamp: {event!r}")
