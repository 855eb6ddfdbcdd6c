"""Tamper evidence: one SHA-256 hash chain per audited server (docs/tamper-evidence.md).

The chain rule, per ``server_uuid``, in bookmark order::

    chain_0 = SHA-256(UTF-8 bytes of server_uuid)                      (the genesis value)
    chain_n = SHA-256(chain_(n-1) as 32 raw bytes || canonical(link_n))

A **link** is an audit event or a gap (a hole the producer knows about: a skipped, pruned,
oversized or invalid event, published as a ``control_event`` of kind ``gap``). A gap is a link
of its own, so a hole is visible in the chain instead of breaking it.

The canonical bytes of a link are a sequence of fields, each the 8-byte big-endian length of its
UTF-8 bytes followed by those bytes (no separators, no escaping)::

    event: "event", server_uuid, timestamp ("YYYY-MM-DD hh:mm:ss"), id (decimal), raw
    gap:   "gap", server_uuid, reason, from_timestamp, from_id, to_timestamp, to_id,
           events, size, sha256                    (an absent value is the empty string)
    checkpoint: "checkpoint", server_uuid, checkpoint_seq, signed_seq, signed_chain,
           at (ms since the epoch), key_id, signature  (auditstream.checkpoint)
    skip:  "skip", server_uuid, from_timestamp, from_id, to_timestamp, to_id, actor, detail

Traps:

- ``raw`` is the event text exactly as the server sent it (the ``raw`` field/column), never a
  re-serialisation of the parsed event: key order, spacing and escapes are part of the hash.
- A gap's ``at``, ``bookmark_*`` and ``detail`` are not hashed: they differ between a send and
  a re-send after a crash, and the chain must be a function of the link sequence, not of sends.
- ``seq`` (the link's number, genesis = 0) travels with the hash but is not hashed: it only
  explains a break (how many links are missing); the hashes alone decide whether data is intact.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

Kind = Literal["event", "gap", "checkpoint", "skip"]

#: The gap fields hashed, in this order, after "gap" and the server_uuid.
GAP_FIELDS: tuple[str, ...] = (
    "reason",
    "from_timestamp",
    "from_id",
    "to_timestamp",
    "to_id",
    "events",
    "size",
    "sha256",
)

#: A signed checkpoint's hashed fields after "checkpoint" and the server_uuid; every field but
#: the last (``signature``) is what the signature covers (``auditstream.checkpoint``). ``at`` is
#: written as milliseconds since the Unix epoch (decimal), its precision in the schema.
CHECKPOINT_FIELDS: tuple[str, ...] = (
    "checkpoint_seq",
    "signed_seq",
    "signed_chain",
    "at",
    "key_id",
    "signature",
)

#: An explained skip (``bookmark set``): old position, new position, who, why.
SKIP_FIELDS: tuple[str, ...] = (
    "from_timestamp",
    "from_id",
    "to_timestamp",
    "to_id",
    "actor",
    "detail",
)

#: The control-event kinds that are links, and their hashed fields.
CONTROL_LINKS: dict[str, tuple[str, ...]] = {
    "gap": GAP_FIELDS,
    "checkpoint": CHECKPOINT_FIELDS,
    "skip": SKIP_FIELDS,
}


def genesis(server_uuid: str) -> bytes:
    """``chain_0`` of ``server_uuid``: SHA-256 of its UTF-8 bytes (32 bytes)."""
    return hashlib.sha256(server_uuid.encode("utf-8")).digest()


def field(value: str) -> bytes:
    """One canonical field: 8-byte big-endian length of the UTF-8 bytes, then the bytes."""
    data = value.encode("utf-8")
    return len(data).to_bytes(8, "big") + data


def link_hash(previous: bytes, canonical: bytes) -> bytes:
    """``SHA-256(previous || canonical)``; ``previous`` is the 32-byte previous link."""
    return hashlib.sha256(previous + canonical).digest()


@lru_cache(maxsize=64)
def _event_head(server_uuid: str) -> bytes:
    """The canonical ``kind`` and ``server_uuid`` fields of every event link of a server."""
    return field("event") + field(server_uuid)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        # naive values come from DATETIME columns, which hold UTC; the year is always 4 digits
        # (strftime writes year 999 as "999", the server writes "0999")
        v = value if value.tzinfo is None else value.astimezone(UTC)
        return f"{v.year:04d}-{v.month:02d}-{v.day:02d} {v.hour:02d}:{v.minute:02d}:{v.second:02d}"
    return str(value)


def millis(value: Any) -> str:
    """A control event's ``at`` as decimal milliseconds since the epoch (naive means UTC)."""
    if isinstance(value, datetime):
        v = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return str((v - _EPOCH) // timedelta(milliseconds=1))
    return _text(value)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Link:
    """One link as a store holds it: what is hashed, the stored hash, and where it was read.

    Attributes:
        server_uuid: the audited server.
        kind: ``"event"`` or ``"gap"``.
        fields: the canonical fields after kind and server_uuid (see the module docstring).
        chain: the stored link hash (lowercase hex), None when the store has none.
        seq: the stored link number, None when the store has none.
        where: opaque location given by the store reader (topic/partition/offset, table/row,
            object/line), repeated verbatim in reports.
        dead_lettered: the store reader found this link in the dead-letter topic, not in the
            store: reported as dead-lettered, never as tampering.
    """

    server_uuid: str
    kind: Kind
    fields: tuple[str, ...]
    chain: str | None = None
    seq: int | None = None
    where: str = ""
    dead_lettered: bool = False

    @classmethod
    def event(cls, server_uuid: str, ts: str | datetime, id_: int, raw: str, **stored: Any) -> Link:
        """An event link; ``ts`` as the server wrote it, or a datetime (naive means UTC)."""
        return cls(server_uuid, "event", (_text(ts), str(int(id_)), raw), **stored)

    @classmethod
    def gap(cls, server_uuid: str, gap: Mapping[str, Any], **stored: Any) -> Link:
        """A gap link from a ``control_event`` record (or an ``audit_control`` row) of kind gap."""
        return cls(server_uuid, "gap", tuple(_text(gap.get(k)) for k in GAP_FIELDS), **stored)

    @classmethod
    def control(cls, server_uuid: str, record: Mapping[str, Any], **stored: Any) -> Link:
        """The link of a control event (record or row) whose kind is in ``CONTROL_LINKS``."""
        kind = record["kind"]
        values = tuple(
            millis(record.get(k)) if k == "at" else _text(record.get(k))
            for k in CONTROL_LINKS[kind]
        )
        return cls(server_uuid, kind, values, **stored)

    @classmethod
    def from_record(cls, name: str, record: Mapping[str, Any], where: str = "") -> Link | None:
        """The link of a decoded Avro record (``schemas.codec.decode``); None if it is none.

        Heartbeats and other control kinds are not links.
        """
        stored = {"chain": record.get("chain"), "seq": record.get("chain_seq"), "where": where}
        if name == "audit_event":
            return cls.event(
                record["server_uuid"], record["timestamp"], record["id"], record["raw"], **stored
            )
        if record.get("kind") in CONTROL_LINKS:
            return cls.control(record["server_uuid"], record, **stored)
        return None

    @property
    def position(self) -> str:
        """Human-readable bookmark: ``ts#id`` of an event, ``gap from..to`` of a gap."""
        if self.kind == "event":
            return f"{self.fields[0]}#{self.fields[1]}"
        f = dict(zip(CONTROL_LINKS[self.kind], self.fields, strict=True))
        if self.kind == "checkpoint":
            return f"checkpoint {f['checkpoint_seq']} of link {f['signed_seq']}"
        if self.kind == "skip":
            return f"skip {f['from_timestamp']}#{f['from_id']}..{f['to_timestamp']}#{f['to_id']}"
        return (
            f"gap({f['reason']}) {f['from_timestamp']}#{f['from_id']}"
            f"..{f['to_timestamp']}#{f['to_id']}"
        )

    @property
    def identity(self) -> tuple[str, ...]:
        """What makes two copies of a link the same link (a re-send repeats it)."""
        return (self.server_uuid, self.kind, *self.fields)

    def canonical(self) -> bytes:
        """The canonical bytes (module docstring)."""
        return b"".join(field(v) for v in (self.kind, self.server_uuid, *self.fields))

    def hash_after(self, previous: bytes) -> bytes:
        """``link_hash(previous, self.canonical())``, fed field by field (no copy of ``raw``)."""
        digest = hashlib.sha256(previous)
        for value in (self.kind, self.server_uuid, *self.fields):
            data = value.encode("utf-8")
            digest.update(len(data).to_bytes(8, "big"))
            digest.update(data)
        return digest.digest()

    def with_raw(self, raw: str) -> Link:
        """The same event link carrying another raw text (used to test swap hypotheses)."""
        return replace(self, fields=(*self.fields[:-1], raw))


def event_digest(previous: bytes, server_uuid: str, ts: str, id_: int, raw: bytes) -> bytes:
    """The 32-byte hash of an event link after ``previous`` (the chain rule, no state object).

    ``ts`` as the server wrote it, ``raw`` the event's UTF-8 bytes exactly as read. The same
    hash as ``Link.event(...).hash_after(previous)`` (property-tested); the constant ``kind``
    and ``server_uuid`` fields are encoded once per server. ``ChainState.advance_event`` and
    the producer's ``Linker`` (its hot path) both hash through here.
    """
    ts_text, id_text = ts.encode("utf-8"), str(id_).encode("utf-8")
    digest = hashlib.sha256(
        b"".join(
            (
                previous,
                _event_head(server_uuid),
                len(ts_text).to_bytes(8, "big"),
                ts_text,
                len(id_text).to_bytes(8, "big"),
                id_text,
                len(raw).to_bytes(8, "big"),
            )
        )
    )
    digest.update(raw)
    return digest.digest()


@dataclass(frozen=True, slots=True)
class ChainState:
    """Where a server's chain stands: the last link's hash and number, and the bookmark.

    The producer keeps one per server, stores ``hash``/``seq`` with the bookmark in the same
    upsert, and after a restart continues from the stored state, so a re-sent event gets the same
    hash as the first time.

    Trap: store the state returned for the last *event* of an acknowledged batch, not for a
    trailing gap: the bookmark cannot move past a gap that follows it, so after a restart the gap
    is found again and re-sent, and must be hashed onto the same predecessor.
    """

    server_uuid: str
    hash: str
    seq: int = 0
    bookmark: tuple[str, int] | None = None

    @classmethod
    def start(cls, server_uuid: str) -> ChainState:
        """The state before the first link (genesis value, seq 0, no bookmark)."""
        return cls(server_uuid, genesis(server_uuid).hex())

    def advance(self, link: Link) -> ChainState:
        """The state after ``link`` (its stored chain/seq are ignored: this computes them).

        Raises:
            ValueError: ``link`` belongs to another server.
        """
        if link.server_uuid != self.server_uuid:
            raise ValueError(f"link of {link.server_uuid} on the chain of {self.server_uuid}")
        digest = link.hash_after(bytes.fromhex(self.hash)).hex()
        bookmark = self.bookmark
        if link.kind == "event":
            bookmark = (link.fields[0], int(link.fields[1]))
        return ChainState(self.server_uuid, digest, self.seq + 1, bookmark)

    def advance_event(self, ts: str | datetime, id_: int, raw: str | bytes) -> ChainState:
        """``advance`` over an event as read (``raw`` exactly as the server sent it).

        The same hash as ``advance(Link.event(...))`` (property-tested in
        tests/auditstream/test_chain.py), without building the ``Link`` (``event_digest``).
        ``raw`` may be its UTF-8 bytes (the page's own: the producer never decodes them). The
        producer's hot path does not build a state per event either (``producer.linker``).
        """
        ts_str = ts if isinstance(ts, str) else _text(ts)
        id_int = int(id_)
        data = raw if isinstance(raw, bytes) else raw.encode("utf-8")
        digest = event_digest(bytes.fromhex(self.hash), self.server_uuid, ts_str, id_int, data)
        return ChainState(self.server_uuid, digest.hex(), self.seq + 1, (ts_str, id_int))

    def advance_gap(self, gap: Mapping[str, Any]) -> ChainState:
        """``advance`` over a gap ``control_event`` record (its hashed fields only)."""
        return self.advance(Link.gap(self.server_uuid, gap))

    def stamp(self, record: dict[str, Any]) -> dict[str, Any]:
        """Put ``chain``/``chain_seq`` of this state into an Avro record (returns it)."""
        record["chain"] = self.hash
        record["chain_seq"] = self.seq
        return record
