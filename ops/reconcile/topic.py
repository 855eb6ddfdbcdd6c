"""The topics' side: events, gaps and dead letters, read with ``ops.verify.topic``.

Each topic is read from its first offset to its current end by a group-less consumer that
commits nothing (``verify.topic.messages``); records become links (``verify.topic.links``).

- Event topic: every copy of an event in the range goes into the index (a producer re-send
  after a crash is a second copy: allowed there, reported as ``resent``).
- Control topic: a gap naming one event (``events == 1`` with a ``to`` position) marks that
  key; a gap with only a SHA-256 (an element without a position) is kept by its SHA-256.
- Dead-letter topic: a record the consumer refused, decodable, marks its key ``dlq``; one that
  cannot be decoded at all (poison) is only counted, with its location.

Trap: a topic that does not exist yet is an empty store for the control and dead-letter topics
(nothing was ever sent there), but an error for the event topic (a wrong name must not pass).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from auditstream.chain import GAP_FIELDS, Link
from auditstream.errors import BrokerError
from consumer.dlq import DLQ_PAYLOAD, REFERENCE
from ops.reconcile.index import KeyIndex, Mark
from ops.reconcile.keys import KeyRange, digest
from ops.verify.topic import links, messages
from schemas.codec import Codec


class Marker(Protocol):
    """Where marks go: the ``KeyIndex``, or a ``MarkBuffer`` filled in another thread."""

    def mark(self, mark: str, server_uuid: str, ts: str, id_: int, what: str) -> None:
        """Record that a gap (``"gap"``) or a dead letter (``"dlq"``) names this key."""


@dataclass
class MarkBuffer:
    """Marks kept in memory (gaps and dead letters are few), applied later by ``apply``.

    Trap: SQLite connections belong to their thread; a reader running in a worker thread marks
    into this buffer, and the thread that owns the index applies it.
    """

    marks: list[Mark] = field(default_factory=list)

    def mark(self, mark: str, server_uuid: str, ts: str, id_: int, what: str) -> None:
        """Keep one mark."""
        self.marks.append(Mark(mark, server_uuid, ts, id_, what))

    def apply(self, index: KeyIndex) -> None:
        """Write the marks into ``index``."""
        index.apply(self.marks)


@dataclass
class TopicResult:
    """Counts and the few things kept in memory (gaps without a key, poison letters)."""

    messages: int = 0
    gaps: int = 0
    gap_sha256: set[str] = field(default_factory=set)
    dead_letters: int = 0
    poison: list[str] = field(default_factory=list)


def read_events(
    conf: Mapping[str, Any],
    topic: str,
    index: KeyIndex,
    keys: KeyRange,
    codec: Codec | None = None,
    idle_timeout: float = 30.0,
    result: TopicResult | None = None,
) -> TopicResult:
    """Every copy of every event of ``topic`` in the range, into ``index``."""
    result = result or TopicResult()
    for link in links(messages(conf, topic, idle_timeout), codec):
        if link.kind != "event":
            continue
        ts, id_, raw = link.fields
        if keys.holds(link.server_uuid, ts, int(id_)):
            index.add("topic", link.server_uuid, ts, int(id_), digest(raw), link.where, "")
            result.messages += 1
    return result


def read_gaps(
    conf: Mapping[str, Any],
    topic: str,
    index: Marker,
    keys: KeyRange,
    codec: Codec | None = None,
    idle_timeout: float = 30.0,
    result: TopicResult | None = None,
) -> TopicResult:
    """The gap control events: keys they name get the ``gap`` mark."""
    result = result or TopicResult()
    try:
        for link in links(messages(conf, topic, idle_timeout), codec):
            if link.kind == "gap":
                result.gaps += 1
                gap = dict(zip(GAP_FIELDS, link.fields, strict=True))
                mark_gap(index, keys, link.server_uuid, gap, link.where, result)
    except BrokerError as exc:
        if exc.message != "no such topic":
            raise
    return result


def mark_gap(
    index: Marker,
    keys: KeyRange,
    server_uuid: str,
    gap: Mapping[str, Any],
    where: str,
    result: TopicResult,
) -> None:
    """Mark the key one gap stands for (shared with the ``audit_control`` reader).

    Only a gap of exactly one event with a position names a key (``oversized``,
    ``too_large_for_topic``, ``invalid_event`` with a position); a gap without a position is
    kept by its SHA-256; ranges (``missing_bookmark``, ``rotated_away``) name no key.
    """
    to_ts, to_id = gap.get("to_timestamp"), gap.get("to_id")
    one = to_ts and to_id not in (None, "") and str(gap.get("events")) == "1"
    if one and keys.holds(server_uuid, str(to_ts), int(str(to_id))):
        what = f"{gap.get('reason')} gap ({where})"
        index.mark("gap", server_uuid, str(to_ts), int(str(to_id)), what)
    if gap.get("sha256"):
        result.gap_sha256.add(str(gap["sha256"]))


def read_dead_letters(
    conf: Mapping[str, Any],
    topic: str,
    index: Marker,
    keys: KeyRange,
    codec: Codec | None = None,
    idle_timeout: float = 30.0,
    result: TopicResult | None = None,
) -> TopicResult:
    """Dead letters: decodable ones mark their key ``dlq``; poison ones are counted.

    A reference letter (``dlq.payload: reference``: the record did not fit the DLQ topic; the
    consumer wrote where the original is instead) marks the key its ``dlq.event.*`` headers name.
    """
    result = result or TopicResult()
    try:
        for msg in messages(conf, topic, idle_timeout):
            result.dead_letters += 1
            headers: dict[str, Any] = dict(msg.headers() or [])
            if headers.get(DLQ_PAYLOAD) == REFERENCE:
                names = ("server_uuid", "timestamp", "id")
                event = [bytes(headers.get(f"dlq.event.{h}") or b"").decode() for h in names]
                where = f"{msg.topic()}/{msg.partition()}@{msg.offset()} (reference letter)"
                if not all(event) or not event[2].isdigit():
                    result.poison.append(where)  # the consumer could not tell which event
                    continue
                if keys.holds(event[0], event[1], int(event[2])):
                    index.mark("dlq", event[0], event[1], int(event[2]), where)
                continue
            found: list[Link] = list(links([msg], codec, dead_lettered=True))
            if not found:
                result.poison.append(f"{msg.topic()}/{msg.partition()}@{msg.offset()}")
                continue
            link = found[0]
            if link.kind == "event":
                ts, id_ = link.fields[0], int(link.fields[1])
                if keys.holds(link.server_uuid, ts, id_):
                    index.mark("dlq", link.server_uuid, ts, id_, link.where)
    except BrokerError as exc:
        if exc.message != "no such topic":
            raise
    return result
