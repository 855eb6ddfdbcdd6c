"""Per-partition lag, from positions and fetch high-water marks (never from ``list_offsets``).

Trap: the Tansu test broker miscounts ``list_offsets(latest)``, and on any broker a freshly
listed end offset races with the fetch; the high-water mark that came with the last fetch
response (``get_watermark_offsets(..., cached=True)``) and the position after the last message
handed to the application are consistent with each other. The metrics module reads ``snapshot``;
this object also keeps the ``auditstream_consumer_lag_messages`` gauge current.
"""

from __future__ import annotations

import threading

from auditstream.metrics import CONSUMER_LAG

TopicPartition = tuple[str, int]


class Lag:
    """Messages behind, per assigned partition; safe to read from another thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lag: dict[TopicPartition, int] = {}

    def update(self, tp: TopicPartition, position: int, high: int) -> None:
        """Record ``high - position`` (never negative) for ``tp``."""
        lag = max(high - position, 0)
        with self._lock:
            self._lag[tp] = lag
        CONSUMER_LAG.labels(tp[0], str(tp[1])).set(lag)

    def forget(self, tps: list[TopicPartition]) -> None:
        """Partitions this member no longer holds: their lag is someone else's."""
        with self._lock:
            for tp in tps:
                if self._lag.pop(tp, None) is not None:
                    CONSUMER_LAG.remove(tp[0], str(tp[1]))

    def snapshot(self) -> dict[TopicPartition, int]:
        """A copy of the current lag per partition."""
        with self._lock:
            return dict(self._lag)

    def total(self) -> int:
        """Sum over the assigned partitions."""
        with self._lock:
            return sum(self._lag.values())
