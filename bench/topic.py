"""Reading a topic back after a stage: how many messages, and when the first and last were sent.

The producer's rate is taken from the broker's side: the span of the messages' ``CreateTime``
(set by the producing client when it hands the message over) from the first to the last event.
That leaves out process start-up and the final wait for acknowledgements, and it counts only
what actually reached the topic.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Consumer

from auditstream.embedded import FAST_GROUP
from auditstream.kafka import check


@dataclass(frozen=True)
class TopicScan:
    """What a topic holds."""

    count: int
    nbytes: int
    first_ms: int
    last_ms: int

    @property
    def span_seconds(self) -> float:
        """Seconds from the first message's CreateTime to the last one's."""
        return (self.last_ms - self.first_ms) / 1000


def scan(bootstrap: str, topic: str, expected: int, timeout: float = 300.0) -> TopicScan:
    """Read ``topic`` from the start until ``expected`` messages were seen.

    Raises:
        RuntimeError: fewer messages arrived within ``timeout`` seconds, or no timestamps.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-scan-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "fetch.max.bytes": 64 * 1024 * 1024,
            **FAST_GROUP,
        }
    )
    count = nbytes = 0
    first = last = -1
    deadline = time.monotonic() + timeout
    try:
        consumer.subscribe([topic])
        while count < expected and time.monotonic() < deadline:
            for msg in consumer.consume(10_000, 0.5):
                if check(msg) is None:
                    continue
                kind, stamp = msg.timestamp()
                if kind == TIMESTAMP_NOT_AVAILABLE:
                    raise RuntimeError(f"messages of {topic} carry no timestamp")
                first = stamp if first < 0 else min(first, stamp)
                last = max(last, stamp)
                count += 1
                nbytes += len(msg.value() or b"")
    finally:
        consumer.close()
    if count < expected:
        raise RuntimeError(f"{topic} holds {count} messages, expected {expected}")
    return TopicScan(count, nbytes, first, last)
