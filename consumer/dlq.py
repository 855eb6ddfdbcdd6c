"""The dead-letter topic: records the archive will not hold, bytes intact, with the reason.

Each dead letter keeps the original key, value and headers and adds these headers (UTF-8):

==========================  ====================================================
``dlq.error.class``         e.g. ``DecodeError``, ``InvalidRecord``, ``ArchiveContentError``
``dlq.error.message``       the error's message (never a secret: it names a field, not a DSN)
``dlq.source.topic``        where the record was read
``dlq.source.partition``    decimal
``dlq.source.offset``       decimal
``dlq.time``                when it was dead-lettered, ISO 8601 UTC
==========================  ====================================================

Trap: ``send`` returns only when the broker acknowledged every letter. The sink calls it before
its commit, so a crash in between re-sends the letters on replay (the DLQ is at-least-once,
identified by source topic/partition/offset); a record is never skipped without its letter.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaException, Producer

from auditstream.errors import BrokerError, DeliveryError
from auditstream.kafka import TopicSpec, audit_topic_config, ensure_topics
from consumer.batch import DeadLetter

log = logging.getLogger(__name__)

HEADER_PREFIX = "dlq."
_MESSAGE_LIMIT = 4000


class DeadLetterQueue:
    """A producer for the DLQ topic (``acks=all``, idempotent)."""

    def __init__(self, producer_conf: dict[str, Any], topic: str, timeout: float = 60.0) -> None:
        self.topic = topic
        self._timeout = timeout
        self._producer = Producer(producer_conf)

    @staticmethod
    def ensure(admin_conf: dict[str, Any], topic: str, partitions: int = 1) -> None:
        """Create the DLQ topic if missing (large messages, kept forever)."""
        ensure_topics(admin_conf, [TopicSpec(topic, partitions, config=audit_topic_config())])

    def send(self, letters: Sequence[DeadLetter]) -> None:
        """Produce ``letters`` and wait for every acknowledgement.

        Raises:
            DeliveryError: a letter was not acknowledged (retry the whole batch).
        """
        failures: list[str] = []

        def on_delivery(err: Any, _msg: Any) -> None:
            if err is not None:
                failures.append(str(err))

        now = datetime.now(UTC).isoformat()
        for letter in letters:
            item = letter.item
            headers: list[tuple[str, str | bytes | None]] = [
                *(item.headers or []),
                (HEADER_PREFIX + "error.class", letter.error_class.encode()),
                (HEADER_PREFIX + "error.message", letter.message[:_MESSAGE_LIMIT].encode()),
                (HEADER_PREFIX + "source.topic", item.topic.encode()),
                (HEADER_PREFIX + "source.partition", str(item.partition).encode()),
                (HEADER_PREFIX + "source.offset", str(item.offset).encode()),
                (HEADER_PREFIX + "time", now.encode()),
            ]
            self._produce(item.key, item.value, headers, on_delivery)
            log.warning(
                "dead-lettered %s at %s/%s@%s: %s",
                letter.error_class,
                item.topic,
                item.partition,
                item.offset,
                letter.message[:200],
            )
        remaining = self._producer.flush(self._timeout)
        if remaining or failures:
            raise DeliveryError(
                f"dead letters not acknowledged: {failures[:1] or remaining}", topic=self.topic
            )

    def _produce(
        self,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, str | bytes | None]],
        cb: Any,
    ) -> None:
        while True:
            try:
                self._producer.produce(
                    self.topic, key=key, value=value, headers=headers, on_delivery=cb
                )
            except BufferError:
                self._producer.poll(0.1)
                continue
            except KafkaException as exc:
                raise BrokerError(f"cannot produce a dead letter: {exc}", topic=self.topic) from exc
            self._producer.poll(0)
            return

    def close(self) -> None:
        """Flush what is left (nothing, after a successful ``send``)."""
        self._producer.flush(self._timeout)
