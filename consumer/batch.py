"""The in-memory batch: messages polled but not yet archived, bounded by rows, bytes and time."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

TopicPartition = tuple[str, int]


@dataclass(slots=True)
class Item:
    """One polled message; ``schema``/``record`` are set once it decoded, ``error`` if it cannot."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None
    schema: str | None = None
    record: dict[str, Any] | None = None
    error: Exception | None = None

    @property
    def tp(self) -> TopicPartition:
        """(topic, partition)."""
        return (self.topic, self.partition)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message the archive will not hold, and why."""

    item: Item
    error_class: str
    message: str


@dataclass
class Batch:
    """Messages in poll order (per partition: offset order), decoded or not yet."""

    items: list[Item] = field(default_factory=list)
    size: int = 0
    started: float | None = None

    def add(self, item: Item) -> None:
        """Append a polled message."""
        if self.started is None:
            self.started = time.monotonic()
        self.size += len(item.value or b"")
        self.items.append(item)

    def __len__(self) -> int:
        return len(self.items)

    def full(self, rows: int, size: int) -> bool:
        """True when a bound on rows or bytes is reached."""
        return len(self) >= rows or self.size >= size

    def due(self, linger_s: float) -> bool:
        """True when the first message has waited ``linger_s`` seconds."""
        return self.started is not None and time.monotonic() - self.started >= linger_s

    def next_offsets(self) -> dict[TopicPartition, int]:
        """Per partition, the offset after the last message in the batch (what gets stored)."""
        out: dict[TopicPartition, int] = {}
        for item in self.items:
            out[item.tp] = max(out.get(item.tp, -1), item.offset + 1)
        return out

    def drop(self, partitions: Iterable[TopicPartition]) -> None:
        """Forget every message of ``partitions`` (revoked or fenced: someone else archives it)."""
        gone = set(partitions)
        self.items = [i for i in self.items if i.tp not in gone]
        self.size = sum(len(i.value or b"") for i in self.items)
        if not self:
            self.started = None
