"""Where one member stands on each assigned partition: archive offset, position, end, lag.

- ``stored``: the next offset the archive holds for the partition, as this member last read or
  wrote it; the sink's compare-and-set expects exactly this value (None: nothing archived).
- ``position``: the offset after the last message handed to this member (polled, perhaps not
  yet archived).
- ``end``: the offset at which the broker last reported the end of the partition (``--once``
  uses ``enable.partition.eof``; it is emitted again after new messages arrive).

Lag is ``fetch high-water mark - stored``: what the archive has committed, not what was polled
(messages polled, decoded or in a transaction are not archived yet). Event-time lag is the age
of the newest event archived from the partition.

Trap: the high-water mark comes from ``get_watermark_offsets(cached=True)``, never from
``list_offsets`` (the Tansu test broker miscounts it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka import TopicPartition as KafkaTP

from consumer.batch import TopicPartition
from consumer.lag import Lag


class Progress:
    """Per-partition state of one member; every method is called from the loop's thread."""

    def __init__(self, lag: Lag) -> None:
        self.lag = lag
        self.stored: dict[TopicPartition, int | None] = {}
        self.positions: dict[TopicPartition, int] = {}
        self.end: dict[TopicPartition, int] = {}

    def owns(self, tp: TopicPartition) -> bool:
        """True while ``tp`` is assigned to this member."""
        return tp in self.stored

    def assigned(self, tp: TopicPartition, stored: int | None) -> None:
        """``tp`` was assigned and positioned at ``stored`` (or reset there after fencing)."""
        self.stored[tp] = stored
        self.positions.pop(tp, None)
        self.end.pop(tp, None)

    def forget(self, tps: Iterable[TopicPartition]) -> None:
        """``tps`` were revoked or lost."""
        gone = list(tps)
        for tp in gone:
            self.stored.pop(tp, None)
            self.positions.pop(tp, None)
            self.end.pop(tp, None)
        self.lag.forget(gone)

    def consumed(self, tp: TopicPartition, offset: int) -> None:
        """A message at ``offset`` was handed to this member."""
        self.positions[tp] = offset + 1

    def at_end(self, tp: TopicPartition, offset: int) -> None:
        """The broker reported the end of ``tp`` at ``offset``."""
        self.end[tp] = offset

    def archived(
        self,
        next_offsets: Mapping[TopicPartition, int],
        newest: Mapping[TopicPartition, datetime] | None = None,
    ) -> None:
        """The archive committed ``next_offsets`` and events up to ``newest`` (event time, UTC).

        Only partitions still owned are kept.
        """
        self.stored.update({tp: o for tp, o in next_offsets.items() if tp in self.stored})
        for tp, ts in (newest or {}).items():
            if tp in self.stored:
                self.lag.archived_event(tp, ts)

    def expected(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, int | None]:
        """What the compare-and-set expects for ``tps``."""
        return {tp: self.stored.get(tp) for tp in tps}

    def caught_up(self) -> bool:
        """True when every assigned partition was reported at its end after its last message."""
        return bool(self.stored) and all(
            tp in self.end and self.end[tp] >= self.positions.get(tp, -1) for tp in self.stored
        )

    def update_lag(self, consumer: Any) -> None:
        """Refresh the lag of every assigned partition: last fetch's high-water mark - stored."""
        for tp, stored in self.stored.items():
            try:
                low, high = consumer.get_watermark_offsets(KafkaTP(*tp), cached=True)
            except KafkaException:
                continue
            if high < 0:
                continue
            self.lag.update(tp, max(low, 0) if stored is None else stored, high)
