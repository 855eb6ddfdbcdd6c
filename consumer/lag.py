"""Per-partition lag: messages not yet archived, and the event-time age of the newest archived.

- Messages: ``fetch high-water mark - the archive's committed next offset``. Messages polled,
  being decoded or in a transaction are still lag: only a committed transaction reduces it.
- Event time: ``now - timestamp`` of the newest event archived from the partition (unknown,
  and not exported, until this member archived one). It grows while nothing is archived.

Trap: the Tansu test broker miscounts ``list_offsets(latest)``, and on any broker a freshly
listed end offset races with the fetch; the high-water mark that came with the last fetch
response (``get_watermark_offsets(..., cached=True)``) is used. The metrics module reads
``snapshot``; this object also keeps the ``auditstream_consumer_lag_messages`` and
``auditstream_consumer_event_lag_seconds`` gauges current.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from auditstream.metrics import CONSUMER_EVENT_LAG, CONSUMER_LAG

TopicPartition = tuple[str, int]


class Lag:
    """Lag per assigned partition; safe to read from another thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lag: dict[TopicPartition, int] = {}
        self._newest: dict[TopicPartition, datetime] = {}

    def update(self, tp: TopicPartition, position: int, high: int) -> None:
        """Record ``high - position`` (never negative) for ``tp``; refresh its event-time lag.

        ``position`` is the archive's committed next offset for ``tp``.
        """
        lag = max(high - position, 0)
        with self._lock:
            self._lag[tp] = lag
            newest = self._newest.get(tp)
        CONSUMER_LAG.labels(tp[0], str(tp[1])).set(lag)
        if newest is not None:
            CONSUMER_EVENT_LAG.labels(tp[0], str(tp[1])).set(_age(newest))

    def archived_event(self, tp: TopicPartition, ts: datetime) -> None:
        """An event of time ``ts`` (naive UTC or aware) from ``tp`` is now in the archive."""
        ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
        with self._lock:
            if tp in self._newest and self._newest[tp] >= ts:
                return
            self._newest[tp] = ts
        CONSUMER_EVENT_LAG.labels(tp[0], str(tp[1])).set(_age(ts))

    def forget(self, tps: list[TopicPartition]) -> None:
        """Partitions this member no longer holds: their lag is someone else's."""
        with self._lock:
            for tp in tps:
                if self._lag.pop(tp, None) is not None:
                    CONSUMER_LAG.remove(tp[0], str(tp[1]))
                if self._newest.pop(tp, None) is not None:
                    CONSUMER_EVENT_LAG.remove(tp[0], str(tp[1]))

    def snapshot(self) -> dict[TopicPartition, int]:
        """A copy of the current lag per partition."""
        with self._lock:
            return dict(self._lag)

    def total(self) -> int:
        """Sum over the assigned partitions."""
        with self._lock:
            return sum(self._lag.values())

    def event_seconds(self) -> dict[TopicPartition, float]:
        """Per partition, the age of the newest archived event now (partitions with one)."""
        with self._lock:
            newest = dict(self._newest)
        return {tp: _age(ts) for tp, ts in newest.items()}


def _age(ts: datetime) -> float:
    return (datetime.now(UTC) - ts).total_seconds()
