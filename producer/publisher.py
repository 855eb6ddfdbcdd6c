"""The one adapter around confluent-kafka's ``Producer``: send, then know what was acknowledged.

Every message gets a delivery callback; ``wait()`` returns only when the broker acknowledged
every message sent since the last ``wait()`` (``acks=all``, idempotence on: see
``auditstream.kafka.PRODUCER_GUARANTEES``), and raises otherwise. For pipelining, ``cut()``
closes the messages sent since the previous cut into one ``Delivery`` and ``wait_for`` waits
for that one only, while later messages stay in flight. Traps:

- ``flush()`` returning non-zero means messages are still unacknowledged: a failure, not a
  detail. So is any delivery report with an error.
- ``produce()`` raises ``BufferError`` when the local queue is full: serve callbacks with
  ``poll`` and retry. ``poll(0)`` every ``POLL_EVERY`` produces keeps callbacks flowing (once
  per message cost ~0.5 µs of a ~30 µs event; the reports wait at most 63 messages longer, and
  ``wait_for``/``wait`` serve them all before deciding anything).
- A message larger than ``message.max.bytes`` is refused at ``produce()``; one larger than the
  topic's ``max.message.bytes`` is refused by the broker in its delivery report. Both come back
  as "too large" (the caller publishes a gap event), never as a failure that would stop the
  stream forever.
- ``wait_for`` serves callbacks with ``poll``; never ``flush()`` there, it would wait for every
  later message too (and empty the pipeline). Callbacks land in the ``Delivery`` the message
  was sent under, so an error in one batch is never charged to another.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from functools import partial
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from auditstream import metrics
from auditstream.errors import BrokerError, DeliveryError
from auditstream.kafka import (
    TopicSpec,
    audit_topic_config,
    ensure_topics,
    topic_max_message_bytes,
)

log = logging.getLogger(__name__)

_TOO_LARGE = {KafkaError.MSG_SIZE_TOO_LARGE}
#: Serve delivery callbacks (``poll(0)``) after this many produces.
POLL_EVERY = 64


class MessageTooLarge(BrokerError):
    """The client refused a message for its size (not retriable: the same bytes never fit)."""

    retriable = False


class Delivery:
    """The outcome of the messages sent between two ``cut()`` calls."""

    __slots__ = ("errors", "pending", "too_large")

    def __init__(self) -> None:
        self.pending = 0
        self.errors: list[KafkaError] = []
        self.too_large: list[Any] = []


class Publisher:
    """Send keyed messages and wait for all of their acknowledgements.

    Args:
        conf: librdkafka producer settings (``ProducerSettings.kafka()``).
        key: the message key (the server_uuid) for every message.
    """

    def __init__(self, conf: dict[str, Any], key: str) -> None:
        self._conf = dict(conf)
        self._key = key.encode("utf-8")
        self._producer = Producer(self._conf)
        self._current = Delivery()
        self._open: list[Delivery] = [self._current]
        self._fatal = False
        self._produced = 0
        self.acked = 0

    @property
    def max_message_bytes(self) -> int | None:
        """The client's ``message.max.bytes`` (key + value), or None when left to librdkafka."""
        value = self._conf.get("message.max.bytes")
        return None if value is None else int(value)

    def send(self, topic: str, value: bytes, ref: Any = None) -> None:
        """Queue ``value`` for ``topic``; ``ref`` identifies it if the broker finds it too large.

        Raises:
            MessageTooLarge: larger than the client's ``message.max.bytes``.
            BrokerError: the client refused the message for another reason.
        """
        delivery = self._current
        callback = partial(self._delivered, delivery, ref)
        while True:
            try:
                self._producer.produce(topic, value, self._key, on_delivery=callback)
                break
            except BufferError:
                self._producer.poll(0.05)
            except KafkaException as exc:
                err = exc.args[0]
                if err.code() in _TOO_LARGE:
                    raise MessageTooLarge(
                        "message larger than message.max.bytes", topic=topic, size=len(value)
                    ) from exc
                # A fatal error (idempotence state lost) needs a new client: reset() builds it.
                self._fatal = self._fatal or err.fatal()
                raise BrokerError(f"produce failed: {err.str()}", topic=topic) from exc
        delivery.pending += 1
        self._produced += 1
        if not self._produced % POLL_EVERY:
            self._producer.poll(0)

    def cut(self) -> Delivery:
        """Close the messages sent since the last cut into one ``Delivery`` (for ``wait_for``)."""
        done, self._current = self._current, Delivery()
        self._open.append(self._current)
        return done

    def wait_for(self, delivery: Delivery, timeout: float) -> list[Any]:
        """Wait for the messages of ``delivery`` only; return the refs refused for size.

        Later messages stay in flight. Raises like ``wait``.
        """
        deadline = time.monotonic() + timeout
        while delivery.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._producer.poll(min(left, 0.5))
        self._forget(delivery)
        if delivery.pending:
            raise DeliveryError(
                f"{delivery.pending} message(s) not acknowledged within {timeout:.0f}s "
                "(broker unavailable?)",
                pending=delivery.pending,
            )
        return self._outcome([delivery])

    def wait(self, timeout: float) -> list[Any]:
        """Wait for every message sent so far; return the refs the broker refused for size.

        Raises:
            DeliveryError: a message failed or is still unacknowledged after ``timeout`` s.
        """
        deadline = time.monotonic() + timeout
        remaining = self._producer.flush(timeout)
        while remaining and time.monotonic() < deadline:
            remaining = self._producer.flush(max(0.0, deadline - time.monotonic()))
        if remaining:
            raise DeliveryError(
                f"{remaining} message(s) not acknowledged within {timeout:.0f}s "
                "(broker unavailable?)",
                pending=remaining,
            )
        deliveries, self._current = self._open, Delivery()
        self._open = [self._current]
        return self._outcome(deliveries)

    def _outcome(self, deliveries: list[Delivery]) -> list[Any]:
        errors = [err for d in deliveries for err in d.errors]
        if errors:
            first, count = errors[0], len(errors)
            self._fatal = self._fatal or any(err.fatal() for err in errors)
            metrics.DELIVERY_ERRORS.labels(self._key.decode()).inc(count)
            raise DeliveryError(
                f"{count} message(s) not delivered: {first.str()}",
                code=first.name(),
                fatal=first.fatal() or None,
            )
        return [ref for d in deliveries for ref in d.too_large]

    def _forget(self, delivery: Delivery) -> None:
        if delivery is self._current:
            self._current = Delivery()
            self._open.append(self._current)
        if delivery in self._open:
            self._open.remove(delivery)

    def reset(self) -> None:
        """Drop whatever is still queued (after a failure; the loop re-sends from the bookmark).

        A fatal error (the idempotent producer's state is lost) needs a new client.
        """
        fatal = self._fatal or any(err.fatal() for d in self._open for err in d.errors)
        self._fatal = False
        self._producer.purge()
        self._producer.poll(0)
        self._producer.flush(0)
        # Purged messages report into the deliveries dropped here, never into new ones.
        self._current = Delivery()
        self._open = [self._current]
        if fatal:
            self._producer = Producer(self._conf)

    def close(self, timeout: float = 5.0) -> int:
        """Flush what is left; return the number of messages still unacknowledged."""
        remaining: int = self._producer.flush(timeout)
        return remaining

    def _delivered(self, delivery: Delivery, ref: Any, err: KafkaError | None, msg: Any) -> None:
        delivery.pending -= 1
        if err is None:
            self.acked += 1
        elif ref is not None and err.code() in _TOO_LARGE:
            delivery.too_large.append(ref)
        else:
            delivery.errors.append(err)


#: Room left under a topic's ``max.message.bytes`` for the record batch around one message
#: (batch header, record header, the key): librdkafka checks key + value against
#: ``message.max.bytes``, the broker checks the whole batch against the topic's limit.
BATCH_HEADROOM = 1024


def ensure(
    admin_conf: dict[str, Any],
    topics: Iterable[str],
    *,
    partitions: int,
    max_message_bytes: int,
    timeout: float = 30.0,
) -> int:
    """Create the topics when missing, sized for ``max_message_bytes`` messages.

    Returns the largest message every topic takes: ``max_message_bytes``, or less when a topic
    that already existed was created with a lower ``max.message.bytes``. Trap: without this,
    librdkafka accepts an event the broker then refuses in its delivery report, after later
    events were already linked, so the event's gap could not sit at its own place in the
    hash chain (``producer/loop.py``). With the client held to the returned limit, such an
    event is refused at ``produce()`` and becomes a gap at its own place.

    Raises:
        BrokerError: the broker is unreachable or refused (retriable).
    """
    config = audit_topic_config(max_message_bytes)
    names = list(topics)
    specs = [TopicSpec(name, partitions, config=config) for name in names]
    ensure_topics(admin_conf, specs, timeout=timeout)
    limit = max_message_bytes
    for name in names:
        topic_limit = topic_max_message_bytes(admin_conf, name, timeout=min(timeout, 10.0))
        if topic_limit is not None and topic_limit - BATCH_HEADROOM < limit:
            limit = max(1000, topic_limit - BATCH_HEADROOM)  # librdkafka's lowest setting
            log.warning(
                "topic %s takes messages up to %d bytes (max.message.bytes), below "
                "--max-message-bytes %d: larger events become gaps at their own place",
                name,
                topic_limit,
                max_message_bytes,
            )
    return limit
