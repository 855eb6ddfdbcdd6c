"""The fused event encoder writes what ``to_record`` + fastavro write, for any event."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from schemas import fused, registry
from schemas.compiled import Unsupported
from tests.schemas.reference import UUID, reference_event, sample_events, traffic_events

ENCODE = fused.compile_event_encoder(registry.current(registry.AUDIT_EVENT))
CHAIN = "ab" * 32


def fused_event(raw: str, event: Any, chain: str | None, seq: int | None) -> bytes | None:
    """The fused body, or None where it hands the event to the reference."""
    try:
        return ENCODE(UUID, raw, event, chain, seq, b"")
    except Exception:
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
