"""Subscribed topics that do not exist yet: wait for them visibly, and notice them quickly.

Trap: librdkafka looks for a missing subscribed topic again only at
``topic.metadata.refresh.interval.ms`` (5 minutes by default). A member started before the
producer created the topics — the usual deployment order — joined the group with nothing to
consume and then sat idle that long while events waited. While a subscribed topic is missing,
the loop asks the broker for its metadata every ``interval`` seconds instead; a metadata answer
that lists the topic is what makes the client's group logic see it and rebalance.

Second trap: a topic that appears while the group is already re-joining for another one (the
producer creates the control topic, then the events topic, a moment apart) is left out of that
join, and librdkafka does not look again until the 5-minute refresh: the member consumed the
control topic only. ``poll`` therefore says when a topic appeared, and the loop then subscribes
again, which makes the member re-join with every subscribed topic it now knows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException

log = logging.getLogger(__name__)

#: Error codes librdkafka reports for a subscribed topic that the broker does not know.
MISSING_CODES = frozenset({KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC})


class TopicWatch:
    """Remembers which subscribed topics are missing and refreshes their metadata.

    Args:
        subscribed: the topics the member subscribed to.
        interval: seconds between two metadata requests while a topic is missing.
    """

    def __init__(self, subscribed: Iterable[str], interval: float = 1.0) -> None:
        self.subscribed = frozenset(subscribed)
        self.interval = interval
        self.missing: set[str] = set()
        self._next = 0.0

    def reported(self, topic: str | None, code: int) -> bool:
        """An error event for ``topic``: True when it says the topic is missing (handled here)."""
        if code not in MISSING_CODES or topic not in self.subscribed:
            return False
        if topic not in self.missing:
            self.missing.add(topic)
            log.warning(
                "waiting for topic %s to be created (checking every %.0f s)",
                topic,
                self.interval,
                extra={"ctx": {"topic": topic}},
            )
        return True

    def poll(self, consumer: Consumer) -> bool:
        """While topics are missing, ask the broker about them at most every ``interval``.

        Returns True when a missing topic exists now (the caller subscribes again).
        """
        now = time.monotonic()
        if not self.missing or now < self._next:
            return False
        self._next = now + self.interval
        before = len(self.missing)
        for topic in sorted(self.missing):
            try:
                meta = consumer.list_topics(topic, timeout=self.interval)
            except KafkaException as exc:
                log.info("metadata request for %s failed: %s", topic, exc)
                break
            found = meta.topics.get(topic)
            if found is not None and found.error is None and found.partitions:
                self.missing.discard(topic)
                log.info(
                    "topic %s exists now (%d partitions)",
                    topic,
                    len(found.partitions),
                    extra={"ctx": {"topic": topic}},
                )
        return len(self.missing) < before
