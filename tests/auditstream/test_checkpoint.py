"""Checkpoint and skip links: the signed bytes as documented, the chain runs through them."""

from __future__ import annotations

import hashlib
import struct
from datetime import UTC, datetime, timedelta
from typing import Any

from auditstream import checkpoint
from auditstream.chain import ChainState, Link
from auditstream.signing import Keyring, Signer, public_hex
from tests.auditstream.test_signing import rfc_signer

UUID = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
AT = datetime(2026, 12, 7, 6, 30, 0, 123000, tzinfo=UTC)


def fields(*values: str) -> bytes:
    return b"".join(struct.pack(">Q", len(v.encode())) + v.encode() for v in values)


def test_signed_bytes_are_the_documented_fields() -> None:
    signer = rfc_signer()
    state = ChainState.start(UUID).advance_event("2026-12-07 06:29:59", 7, "{}")
    record = checkpoint.checkpoint_record(signer, state, 3, AT)
    link = Link.control(UUID, record)
    by_hand = fields("checkpoint", UUID, "3", "1", state.hash, "1796625000123", signer.key_id)
    assert checkpoint.signed_bytes(link) == by_hand
    assert link.canonical() == by_hand + fields(record["signature"])
    ring = Keyring.load([public_hex(signer.public)])
    assert checkpoint.check(ring, link) is True
    # any signed field changed: the signature fails
    forged = Link.control(UUID, {**record, "signed_chain": "00" * 32})
    assert checkpoint.check(ring, forged) is False
    assert checkpoint.check(Keyring({}), link) is None


def test_a_checkpoint_and_a_skip_are_links_of_the_chain() -> None:
    state = ChainState.start(UUID).advance_event("2026-12-07 06:29:59", 7, "{}")
    record = checkpoint.checkpoint_record(rfc_signer(), state, 1, AT)
    after = state.advance(Link.control(UUID, record))
    expected = hashlib.sha256(bytes.fromhex(state.hash) + Link.control(UUID, record).canonical())
    assert (after.hash, after.seq) == (expected.hexdigest(), 2)
    skip = checkpoint.skip_record(
        UUID, ("2026-12-07 06:29:59", 7), ("2026-12-07 07:00:00", 0), "root@ops", "pruned", AT
    )
    link = Link.from_record("control_event", {**skip, "chain": None, "chain_seq": None})
    assert link is not None and link.kind == "skip"
    assert link.canonical() == fields(
        "skip", UUID, "2026-12-07 06:29:59", "7", "2026-12-07 07:00:00", "0", "root@ops", "pruned"
    )
    assert link.position == "skip 2026-12-07 06:29:59#7..2026-12-07 07:00:00#0"


def test_the_time_survives_a_naive_utc_datetime_as_the_archive_returns_it() -> None:
    record = checkpoint.checkpoint_record(rfc_signer(), ChainState.start(UUID), 1, AT)
    naive = {**record, "at": AT.replace(tzinfo=None)}
    assert Link.control(UUID, naive).canonical() == Link.control(UUID, record).canonical()


def sealed_records(
    records: list[tuple[str, dict[str, Any]]], signer: Signer, every: int = 10, first: int = 1
) -> list[tuple[str, dict[str, Any]]]:
    """``records`` (chained, one server) with a checkpoint after every ``every`` events,
    re-chained as the producer would (each checkpoint is a link)."""
    out: list[tuple[str, dict[str, Any]]] = []
    uuid = records[0][1]["server_uuid"]
    state, number, events = ChainState.start(uuid), first - 1, 0
    for name, record in records:
        r = dict(record)
        link = Link.from_record(name, r)
        assert link is not None
        state = state.advance(link)
        out.append((name, state.stamp(r)))
        if name == "audit_event":
            events += 1
            if events % every == 0:
                number += 1
                cp = checkpoint.checkpoint_record(
                    signer, state, number, AT + timedelta(seconds=events)
                )
                state = state.advance(Link.control(uuid, cp))
                out.append(("control_event", state.stamp(cp)))
    return out
