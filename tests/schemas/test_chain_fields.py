"""Schema v2 (the chain fields) against v1: either side reads what the other wrote."""

from __future__ import annotations

import io
from typing import Any

import fastavro
import pytest

from schemas import codec, registry

UUID = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
EVENT = {"server_uuid": UUID, "timestamp": 0, "id": 1, "class": "general", "event": "status",
         "raw": "{}"}  # fmt: skip
GAP = {"server_uuid": UUID, "kind": "gap", "at": 0, "reason": "oversized"}
RECORDS = {registry.AUDIT_EVENT: EVENT, registry.CONTROL_EVENT: GAP}


def write(schema: Any, record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, record)
    return buf.getvalue()


@pytest.mark.parametrize("name", list(RECORDS))
def test_v1_data_reads_with_v2_as_unchained(name: str) -> None:
    v1, v2 = registry.versions(name)[1], registry.versions(name)[2]
    back = fastavro.schemaless_reader(io.BytesIO(write(v1, RECORDS[name])), v1, v2)
    assert back["chain"] is None and back["chain_seq"] is None
    assert back["server_uuid"] == UUID


@pytest.mark.parametrize("name", list(RECORDS))
def test_v2_data_reads_with_v1_without_the_chain(name: str) -> None:
    v1, v2 = registry.versions(name)[1], registry.versions(name)[2]
    chained = {**RECORDS[name], "chain": "ab" * 32, "chain_seq": 7}
    back = fastavro.schemaless_reader(io.BytesIO(write(v2, chained)), v2, v1)
    assert "chain" not in back and back["server_uuid"] == UUID


def test_messages_framed_with_the_v1_fingerprint_still_decode() -> None:
    v1 = registry.versions(registry.AUDIT_EVENT)[1]
    value = codec.SINGLE_OBJECT_MARKER + registry.fingerprint64(v1) + write(v1, EVENT)
    name, record = codec.decode(value, "t")
    assert (name, record["chain"], record["raw"]) == (registry.AUDIT_EVENT, None, "{}")


def test_the_chain_survives_both_framings() -> None:
    for c in (codec.SingleObjectCodec(), codec.RegistryCodec("mock://chain")):
        for name, record in RECORDS.items():
            chained = {**record, "chain": "cd" * 32, "chain_seq": 2**40}
            _, back = c.decode(c.encode(name, chained, "t"), "t")
            assert (back["chain"], back["chain_seq"]) == ("cd" * 32, 2**40)
