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

Size: the DLQ topic is created with room for any message of the events topic plus the headers
above (``ensure``: the events topic's ``max.message.bytes`` + ``HEADROOM``), and the DLQ producer's
``message.max.bytes`` is the DLQ topic's actual limit. A letter that still does not fit (a DLQ
topic created smaller, by hand or by an older release) is not retried for ever: a **reference
letter** takes its place. Its value is a small JSON object naming the original, which stays
readable in the events topic; its headers are the ones above plus:

==========================  ====================================================
``dlq.payload``             ``reference`` (absent on an ordinary letter)
``dlq.original.length``     the original value's length in bytes, decimal
``dlq.original.sha256``     the original value's SHA-256, hex
``dlq.event.server_uuid``   the event's identity, when the record decoded
``dlq.event.timestamp``     (``reconcile`` counts the event as dead-lettered)
``dlq.event.id``
==========================  ====================================================

Steps (``send``):

1. Produce each letter whole; one the client refuses for its size becomes a reference at once.
2. Wait for every acknowledgement. Letters the broker refused for their size are produced again
   one at a time (a refused batch fails every letter in it); refused again: a reference.
3. Any other failure raises ``DeliveryError``: the caller retries the whole batch.

Trap: ``send`` returns only when the broker acknowledged every letter. The sink calls it before
its commit, so a crash in between re-sends the letters on replay (the DLQ is at-least-once,
identified by source topic/partition/offset); a record is never skipped without its letter.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from auditstream import metrics
from auditstream.chain import Link
from auditstream.errors import BrokerError, DeliveryError
from auditstream.kafka import (
    MAX_MESSAGE_BYTES,
    TopicSpec,
    audit_topic_config,
    ensure_topics,
    topic_max_message_bytes,
)
from consumer.batch import DeadLetter

log = logging.getLogger(__name__)

HEADER_PREFIX = "dlq."
#: A dead letter carrying a reference to the original instead of its bytes (read by verify).
DLQ_PAYLOAD, REFERENCE = "dlq.payload", b"reference"
#: Room for the DLQ headers (the error message is cut at 4000 bytes) and the record overhead.
HEADROOM = 64 * 1024
_MESSAGE_LIMIT = 4000
_TOO_LARGE = {KafkaError.MSG_SIZE_TOO_LARGE}
Headers = list[tuple[str, str | bytes | None]]


class DeadLetterQueue:
    """A producer for the DLQ topic (``acks=all``, idempotent)."""

    def __init__(
        self,
        producer_conf: dict[str, Any],
        topic: str,
        timeout: float = 60.0,
        max_message_bytes: int | None = None,
    ) -> None:
        self.topic = topic
        self._timeout = timeout
        conf = dict(producer_conf)
        if max_message_bytes is not None:  # the topic's limit: larger letters fail here, at once
            conf["message.max.bytes"] = max_message_bytes
        self._producer = Producer(conf)

    @staticmethod
    def ensure(
        admin_conf: dict[str, Any],
        topic: str,
        partitions: int = 1,
        *,
        events_topic: str | None = None,
    ) -> int:
        """Create the DLQ topic if missing (kept forever); return its ``max.message.bytes``.

        A new DLQ topic takes the largest message of ``events_topic`` (16 MiB when that topic
        does not exist yet) plus ``HEADROOM``; an existing one is left as it is.
        """
        events = topic_max_message_bytes(admin_conf, events_topic) if events_topic else None
        wanted = max(events or 0, MAX_MESSAGE_BYTES) + HEADROOM
        ensure_topics(admin_conf, [TopicSpec(topic, partitions, config=audit_topic_config(wanted))])
        return topic_max_message_bytes(admin_conf, topic) or wanted

    def send(self, letters: Sequence[DeadLetter]) -> None:
        """Produce ``letters`` and wait for every acknowledgement (see the steps above).

        Raises:
            DeliveryError: a letter was not acknowledged (retry the whole batch).
        """
        now = datetime.now(UTC).isoformat()
        # Step 1
        refused = self._round(letters, now)
        # Step 2
        for letter in refused:
            if self._round([letter], now):
                self._round([letter], now, reference=True)

    def _round(
        self, letters: Sequence[DeadLetter], now: str, *, reference: bool = False
    ) -> list[DeadLetter]:
        """Produce and flush ``letters``; return those the broker refused for their size."""
        too_large: list[DeadLetter] = []
        failures: list[str] = []

        def on_delivery(letter: DeadLetter) -> Any:
            def done(err: Any, _msg: Any) -> None:
                if err is None:
                    return
                if err.code() in _TOO_LARGE and not reference:
                    too_large.append(letter)
                else:
                    failures.append(str(err))

            return done

        for letter in letters:
            if not reference and self._produce(letter, now, on_delivery(letter)):
                continue
            self._produce(letter, now, on_delivery(letter), reference=True)
        # Step 3
        remaining = self._producer.flush(self._timeout)
        if remaining or failures:
            raise DeliveryError(
                f"dead letters not acknowledged: {failures[:1] or remaining}", topic=self.topic
            )
        return too_large

    def _produce(self, letter: DeadLetter, now: str, cb: Any, *, reference: bool = False) -> bool:
        """Produce ``letter`` (or its reference); False if the client refused it for its size."""
        item = letter.item
        headers: Headers = [] if reference else list(item.headers or [])
        headers += _headers(letter, now)
        value = item.value
        if reference:
            value, extra = _reference(letter)
            headers += extra
        while True:
            try:
                self._producer.produce(
                    self.topic, key=item.key, value=value, headers=headers, on_delivery=cb
                )
            except BufferError:
                self._producer.poll(0.1)
                continue
            except KafkaException as exc:
                if not reference and exc.args and exc.args[0].code() in _TOO_LARGE:
                    return False
                raise BrokerError(f"cannot produce a dead letter: {exc}", topic=self.topic) from exc
            self._producer.poll(0)
            break
        where = f"{item.topic}/{item.partition}@{item.offset}"
        if reference:
            metrics.DEAD_LETTER_REFERENCES.labels(item.topic).inc()
            log.warning(
                "dead letter too large for %s: wrote a reference to the original at %s"
                " (%s bytes; it stays readable there): %s",
                self.topic,
                where,
                len(item.value or b""),
                letter.message[:200],
            )
        else:
            log.warning(
                "dead-lettered %s at %s: %s", letter.error_class, where, letter.message[:200]
            )
        return True

    def close(self) -> None:
        """Flush what is left (nothing, after a successful ``send``)."""
        self._producer.flush(self._timeout)


def _headers(letter: DeadLetter, now: str) -> Headers:
    item = letter.item
    return [
        (HEADER_PREFIX + "error.class", letter.error_class.encode()),
        (HEADER_PREFIX + "error.message", letter.message[:_MESSAGE_LIMIT].encode()),
        (HEADER_PREFIX + "source.topic", item.topic.encode()),
        (HEADER_PREFIX + "source.partition", str(item.partition).encode()),
        (HEADER_PREFIX + "source.offset", str(item.offset).encode()),
        (HEADER_PREFIX + "time", now.encode()),
    ]


def _reference(letter: DeadLetter) -> tuple[bytes, Headers]:
    """The value and extra headers of a reference letter (see the module docstring)."""
    item = letter.item
    original = item.value or b""
    digest = hashlib.sha256(original).hexdigest()
    body = {
        "reference": {"topic": item.topic, "partition": item.partition, "offset": item.offset},
        "sha256": digest,
        "length": len(original),
        "reason": f"{letter.error_class}: {letter.message[:_MESSAGE_LIMIT]}",
    }
    headers: Headers = [
        (DLQ_PAYLOAD, REFERENCE),
        (HEADER_PREFIX + "original.length", str(len(original)).encode()),
        (HEADER_PREFIX + "original.sha256", digest.encode()),
    ]
    record = item.record
    if item.schema == "audit_event" and record is not None:
        try:
            link = Link.from_record("audit_event", record)
        except (KeyError, TypeError, ValueError):
            link = None
        if link is not None:
            body["event"] = {"server_uuid": link.server_uuid, "timestamp": link.fields[0],
                             "id": link.fields[1]}  # fmt: skip
            headers += [
                (HEADER_PREFIX + "event.server_uuid", link.server_uuid.encode()),
                (HEADER_PREFIX + "event.timestamp", link.fields[0].encode()),
                (HEADER_PREFIX + "event.id", link.fields[1].encode()),
            ]
    return json.dumps(body, sort_keys=True).encode(), headers
