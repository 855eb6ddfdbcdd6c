"""Control events on the control topic: gaps (never silent) and heartbeats.

A **gap** says which events a subscriber will never see and why (schema ``control_event``):

- ``oversized``: ``audit_log_read`` skipped an event larger than the read buffer; only a
  ``SHOW WARNINGS`` line tells (its text is in ``detail``).
- ``too_large_for_topic``: the event was read (Percona returns oversized events whole) but its
  message does not fit the topic; the gap carries its position, size and SHA-256.
- ``missing_bookmark`` / ``rotated_away``: the bookmarked event no longer exists (pruned or
  rotated away); the events between ``from`` and ``to`` are lost.
- ``invalid_event``: an element of a page that cannot be identified or encoded; its size and
  SHA-256 let an operator find it in the server's log.

Gaps travel in the batch they belong to: the bookmark moves past them only once they are
acknowledged, like events; each gap is a link of the server's hash chain (``chain``,
``chain_seq``; docs/tamper-evidence.md). A **heartbeat** (not a link) carries the bookmark and
the event-time lag (newest event written minus bookmark) so a subscriber can alert on a silent
or stuck server.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from auditstream import metrics
from auditstream.position import Position, position_text
from producer.linker import Linker
from producer.publisher import Publisher
from schemas.codec import Codec
from schemas.mapping import parse_timestamp
from schemas.registry import CONTROL_EVENT

log = logging.getLogger(__name__)


class Control:
    """Publish control events keyed by the server's uuid.

    Args:
        server_uuid: the audited server.
        codec: the framing of the event topic (the control topic uses the same).
        publisher: shared with the events, so a gap is acknowledged with its batch.
        topic: the control topic.
    """

    def __init__(self, server_uuid: str, codec: Codec, publisher: Publisher, topic: str) -> None:
        self._uuid = server_uuid
        self._codec = codec
        self._publisher = publisher
        self._topic = topic

    def gap(
        self,
        reason: str,
        bookmark: Position | None,
        *,
        start: Position | None = None,
        end: Position | None = None,
        events: int | None = None,
        size: int | None = None,
        sha256: str | None = None,
        detail: str | None = None,
        chain: Linker,
    ) -> None:
        """Queue a gap event (the caller's next ``Publisher.wait`` acknowledges it).

        The gap is linked at the head of ``chain`` and stamped with its link.
        """
        record = self._base("gap", bookmark)
        record.update(
            reason=reason,
            from_timestamp=start.ts if start else None,
            from_id=start.id if start else None,
            to_timestamp=end.ts if end else None,
            to_id=end.id if end else None,
            events=events,
            size=size,
            sha256=sha256,
            detail=detail,
        )
        chain.gap(record)
        self._publisher.send(self._topic, self._codec.encode(CONTROL_EVENT, record, self._topic))
        metrics.GAPS.labels(self._uuid, reason).inc()
        log.warning(
            "gap: events lost at the source (%s)",
            reason,
            extra={
                "ctx": {
                    "server_uuid": self._uuid,
                    "from": position_text(start),
                    "to": position_text(end),
                    "bookmark": position_text(bookmark),
                    "size": size,
                    "sha256": sha256,
                    "detail": detail,
                }
            },
        )

    def heartbeat(self, bookmark: Position | None, newest: Position | None) -> None:
        """Queue a heartbeat with the bookmark and the event-time lag behind ``newest``.

        ``newest`` is ``audit_log_read_bookmark()`` (the newest event written) as last read.
        """
        lag_seconds = None
        if newest is not None and bookmark is not None:
            lag = parse_timestamp(newest.ts) - parse_timestamp(bookmark.ts)
            lag_seconds = max(0.0, lag.total_seconds())
        record = self._base("heartbeat", bookmark)
        record["lag_seconds"] = lag_seconds
        self._publisher.send(self._topic, self._codec.encode(CONTROL_EVENT, record, self._topic))
        if lag_seconds is not None:
            metrics.BOOKMARK_LAG.labels(self._uuid).set(lag_seconds)
        if bookmark is not None:
            at = parse_timestamp(bookmark.ts).timestamp()
            metrics.BOOKMARK_TIME.labels(self._uuid).set(at)

    def _base(self, kind: str, bookmark: Position | None) -> dict[str, Any]:
        return {
            "server_uuid": self._uuid,
            "kind": kind,
            "at": datetime.now(UTC),
            "bookmark_timestamp": bookmark.ts if bookmark else None,
            "bookmark_id": bookmark.id if bookmark else None,
        }
