"""control_event v3 (checkpoints, skips) against v2: either side reads what the other wrote,
and a signed checkpoint still verifies after a trip through both framings."""

from __future__ import annotations

import io
from typing import Any

import fastavro

from auditstream import checkpoint
from auditstream.chain import ChainState, Link
from auditstream.signing import Keyring, public_hex
from schemas import codec, registry
from tests.auditstream.test_signing import rfc_signer

UUID = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
GAP = {"server_uuid": UUID, "kind": "gap", "at": 0, "reason": "oversized", "chain": "ab" * 32,
       "chain_seq": 3}  # fmt: skip
NEW = ("checkpoint_seq", "signed_seq", "signed_chain", "key_id", "signature", "actor")


def write(schema: Any, record: dict[str, Any]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, record)
    return buf.getvalue()


def signed() -> dict[str, Any]:
    state = ChainState.start(UUID).advance_event("2026-12-07 06:29:59", 7, "{}")
    record = checkpoint.checkpoint_record(rfc_signer(), state, 4, checkpoint.now_ms())
    return ChainState(UUID, state.hash, state.seq).advance(Link.control(UUID, record)).stamp(record)


def test_v2_data_reads_with_v3_without_seal_fields() -> None:
    v2, v3 = (
        registry.versions(registry.CONTROL_EVENT)[2],
        registry.versions(registry.CONTROL_EVENT)[3],
    )
    back = fastavro.schemaless_reader(io.BytesIO(write(v2, GAP)), v2, v3)
    assert all(back[name] is None for name in NEW)
    assert (back["chain"], back["chain_seq"]) == ("ab" * 32, 3)


def test_v3_checkpoint_reads_with_v2_as_an_unknown_kind() -> None:
    v2, v3 = (
        registry.versions(registry.CONTROL_EVENT)[2],
        registry.versions(registry.CONTROL_EVENT)[3],
    )
    record = signed()
    back = fastavro.schemaless_reader(io.BytesIO(write(v3, record)), v3, v2)
    assert back["kind"] == "checkpoint" and "signature" not in back
    assert back["chain_seq"] == 2


def test_a_checkpoint_verifies_after_both_framings() -> None:
    record = signed()
    ring = Keyring.load([public_hex(rfc_signer().public)])
    for c in (codec.SingleObjectCodec(), codec.RegistryCodec("mock://seal")):
        name, back = c.decode(c.encode(registry.CONTROL_EVENT, dict(record), "t"), "t")
        link = Link.from_record(name, back)
        assert link is not None and link.kind == "checkpoint"
        assert checkpoint.check(ring, link) is True
        assert link.canonical() == Link.control(UUID, record).canonical()
        assert ChainState(UUID, record["signed_chain"], 1).advance(link).hash == back["chain"]
