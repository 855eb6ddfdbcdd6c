"""Signed checkpoints and explained skips: the control events that seal a hash chain.

A **checkpoint** signs, with the producer's Ed25519 key, the link of the last acknowledged audit
event of a server (its number ``signed_seq`` and hash ``signed_chain``), numbered per server
(``checkpoint_seq``, 1, 2, ...). It is published as a ``control_event`` of kind
``checkpoint`` and is itself the next link of the chain. The signed bytes are the canonical
fields of that link without the last one (docs/tamper-evidence.md)::

    field("checkpoint") field(server_uuid) field(checkpoint_seq) field(signed_seq)
    field(signed_chain) field(at as ms since the epoch) field(key_id)

A **skip** (kind ``skip``) records that an operator moved the bookmark (``bookmark set``): old
position (``from_*``), new position (``to_*``), who (``actor``), why (``detail``). It is a link
that continues the old chain, so ``verify`` reports an explained skip, not a new chain.

Traps:

- ``at`` is part of the signature with millisecond precision: build it with
  ``datetime.now(UTC)`` truncated to milliseconds (``now_ms``), since Avro's
  ``timestamp-millis`` drops the rest and the stored value must verify.
- The signature covers ``key_id``: a checkpoint cannot be moved to another key's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from auditstream.chain import CHECKPOINT_FIELDS, CONTROL_LINKS, ChainState, Link, field
from auditstream.signing import Keyring, Signer

CHECKPOINT = "checkpoint"
SKIP = "skip"


def now_ms() -> datetime:
    """The current UTC time, truncated to milliseconds (what the schema keeps)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def signed_bytes(link: Link) -> bytes:
    """What the signature of a checkpoint link covers: its canonical bytes minus the signature."""
    if link.kind != CHECKPOINT:
        raise ValueError(f"not a checkpoint: {link.kind}")
    return b"".join(field(v) for v in (link.kind, link.server_uuid, *link.fields[:-1]))


def checkpoint_record(
    signer: Signer,
    signed: ChainState,
    checkpoint_seq: int,
    at: datetime,
    bookmark: tuple[str, int] | None = None,
) -> dict[str, Any]:
    """A signed ``control_event`` of kind checkpoint over ``signed`` (not yet chained).

    Args:
        signer: the producer's key.
        signed: the chain state at the last acknowledged event (its seq and hash are signed).
        checkpoint_seq: this checkpoint's number for the server (1, 2, ...).
        at: the signing time (``now_ms()``).
        bookmark: the position of the signed event (not signed: a convenience for readers).
    """
    record: dict[str, Any] = {
        "server_uuid": signed.server_uuid,
        "kind": CHECKPOINT,
        "at": at,
        "bookmark_timestamp": bookmark[0] if bookmark else None,
        "bookmark_id": bookmark[1] if bookmark else None,
        "checkpoint_seq": checkpoint_seq,
        "signed_seq": signed.seq,
        "signed_chain": signed.hash,
        "key_id": signer.key_id,
        "signature": "",
    }
    record["signature"] = signer.sign(signed_bytes(Link.control(signed.server_uuid, record)))
    return record


def skip_record(
    server_uuid: str,
    old: tuple[str, int] | None,
    new: tuple[str, int],
    actor: str,
    why: str,
    at: datetime,
) -> dict[str, Any]:
    """A ``control_event`` of kind skip (not yet chained)."""
    return {
        "server_uuid": server_uuid,
        "kind": SKIP,
        "at": at,
        "bookmark_timestamp": new[0],
        "bookmark_id": new[1],
        "from_timestamp": old[0] if old else None,
        "from_id": old[1] if old else None,
        "to_timestamp": new[0],
        "to_id": new[1],
        "actor": actor,
        "detail": why,
    }


def check(keys: Keyring, link: Link) -> bool | None:
    """The checkpoint's signature: True valid, False bad, None unknown key."""
    values = dict(zip(CHECKPOINT_FIELDS, link.fields, strict=True))
    return keys.check(values["key_id"], signed_bytes(link), values["signature"])


def fields(link: Link) -> Mapping[str, str]:
    """A checkpoint or skip link's hashed fields by name."""
    return dict(zip(CONTROL_LINKS[link.kind], link.fields, strict=True))
