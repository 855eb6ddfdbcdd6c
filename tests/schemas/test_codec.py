"""The message contract: every real sample event survives event → record → bytes → record."""

from __future__ import annotations

import io
import json
from pathlib import Path

import fastavro
import orjson
import pytest

from auditstream.errors import DecodeError
from schemas import codec, registry
from schemas.mapping import InvalidEventError, to_record
from tests.schemas.reference import fastavro_body, fastavro_record

SAMPLE = (
    Path(__file__).resolve().parents[3] / "shared" / "samples" / "mysql-8.0.22-commercial-audit.log"
)
UUID = "3e11fa47-71ca-11e1-9e33-c80aa9429562"


def sample_events() -> list[str]:
    """The sample's events, each as the exact JSON text the server wrote (trailing comma cut)."""
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    return [line.rstrip().removesuffix(",") for line in lines if line.strip()]


def test_sample_is_present_and_complete() -> None:
    assert len(sample_events()) == 31


@pytest.mark.parametrize("framing", ["single", "registry"])
def test_every_sample_event_round_trips_unchanged(framing: str) -> None:
    c = codec.SingleObjectCodec() if framing == "single" else codec.RegistryCodec("mock://contract")
    for raw in sample_events():
        event = orjson.loads(raw)
        value = c.encode("audit_event", to_record(UUID, raw, event), "audit")
        name, record = c.decode(value, "audit")
        assert name == "audit_event"
        assert record["raw"] == raw  # byte for byte, not merely equal when parsed
        assert orjson.loads(record["raw"]) == event
        assert record["class"] == event["class"]
        assert record["id"] == event["id"]


def test_flat_fields_of_a_table_access_event() -> None:
    raw = next(r for r in sample_events() if '"table_access_data"' in r)
    record = to_record(UUID, raw, orjson.loads(raw))
    assert record["table_db"] == "audit_test"
    assert record["table_name"] == "audit_test_table"
    assert record["query"] == "INSERT INTO audit_test_table values ('John', 'Smith')"
    assert record["sql_command"] == "insert"
    assert record["login_ip"] == "192.168.2.5"


def test_single_object_header_is_the_spec_fingerprint() -> None:
    value = codec.SingleObjectCodec().encode(
        "control_event",
        {"server_uuid": UUID, "kind": "heartbeat", "at": 0},
        "control",
    )
    assert value[:2] == b"\xc3\x01"
    parsed = registry.current("control_event")
    assert value[2:10] == registry.fingerprint64(parsed)
    # Decodable by any Avro library with the schema file alone.
    body = fastavro.schemaless_reader(io.BytesIO(value[10:]), parsed)
    assert body["kind"] == "heartbeat"


def test_spec_fingerprint_vector() -> None:
    # Avro spec: the CRC-64-AVRO fingerprint of "int" is 0x7275d51a3f395c8f, written LE.
    assert registry.fingerprint64("int") == bytes.fromhex("8f5c393f1ad57572")


@pytest.mark.parametrize(
    "value",
    [b"", b"garbage", b"\xc3\x01" + b"\x00" * 8 + b"x", b"\xc3\x01"],
)
def test_undecodable_values_raise_decode_error(value: bytes) -> None:
    with pytest.raises(DecodeError):
        codec.decode(value, "audit")


@pytest.mark.parametrize(
    "event",
    [
        {"id": 0, "class": "general", "event": "status"},
        {"timestamp": "2020-10-19 19:21:33", "class": "general", "event": "status"},
        {"timestamp": "19/10/2020", "id": 0, "class": "general", "event": "status"},
        {"timestamp": "2020-10-19 19:21:33", "id": "7", "class": "general", "event": "status"},
        {"timestamp": "2020-10-19 19:21:33", "id": -1, "class": "general", "event": "status"},
        {"timestamp": "2020-10-19 19:21:33", "id": True, "class": "general", "event": "status"},
    ],
)
def test_events_without_identity_are_invalid(event: dict[str, object]) -> None:
    with pytest.raises(InvalidEventError):
        to_record(UUID, json.dumps(event), event)


def test_unknown_class_and_keys_are_kept() -> None:
    raw = '{"timestamp": "2024-01-01 00:00:00", "id": 9, "class": "parse", "event": "rewrite", "x": {"y": [1, 2.5e3]}}'
    record = to_record(UUID, raw, orjson.loads(raw))
    _, back = codec.decode(codec.SingleObjectCodec().encode("audit_event", record, "t"), "t")
    assert back["class"] == "parse"
    assert back["raw"] == raw


@pytest.mark.parametrize("framing", ["single", "registry"])
def test_encode_event_is_encode_of_to_record(framing: str) -> None:
    c = codec.SingleObjectCodec() if framing == "single" else codec.RegistryCodec("mock://fused")
    for seq, raw in enumerate(sample_events()):
        event = orjson.loads(raw)
        record = to_record(UUID, raw, event, chain="cd" * 32, chain_seq=seq)
        expected = c.encode("audit_event", record, "audit")
        value = c.encode_event(UUID, raw, event, "audit", chain="cd" * 32, chain_seq=seq)
        assert value == expected
        assert c.decode(value, "audit") == ("audit_event", c.decode(expected, "audit")[1])


def test_single_object_values_are_fastavro_bytes_and_read_back_as_fastavro_reads_them() -> None:
    c = codec.SingleObjectCodec()
    for raw in sample_events():
        record = to_record(UUID, raw, orjson.loads(raw), chain="ef" * 32, chain_seq=3)
        value = c.encode("audit_event", record, "audit")
        assert value[10:] == fastavro_body("audit_event", record)
        name, back = c.decode(value, "audit")
        assert name == "audit_event"
        assert back == fastavro_record("audit_event", value[10:])
        assert (
            back["timestamp"].tzinfo
            is fastavro_record("audit_event", value[10:])["timestamp"].tzinfo
        )


@pytest.mark.parametrize(
    "event",
    [
        {"timestamp": "2020-10-19 19:21:33", "id": 2**63, "class": "general", "event": "status"},
        {"timestamp": "2020-10-19 19:21:33", "id": 1, "class": ["x"], "event": "status"},
        {"timestamp": "2020-10-19 19:21:33", "id": True, "class": "general", "event": "status"},
    ],
)
def test_encode_event_raises_what_the_reference_raises(event: dict[str, object]) -> None:
    c = codec.SingleObjectCodec()
    raw = json.dumps(event)
    with pytest.raises(Exception) as reference:
        c.encode("audit_event", to_record(UUID, raw, event), "audit")
    with pytest.raises(type(reference.value)):
        c.encode_event(UUID, raw, event, "audit")


def test_a_corrupt_body_of_the_current_schema_is_a_decode_error() -> None:
    c = codec.SingleObjectCodec()
    raw = sample_events()[0]
    value = c.encode("audit_event", to_record(UUID, raw, orjson.loads(raw)), "audit")
    for cut in (11, 20, len(value) // 2, len(value) - 1):
        with pytest.raises(DecodeError, match="corrupt"):
            c.decode(value[:cut], "audit")
