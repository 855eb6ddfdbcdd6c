"""The one adapter around confluent-kafka's ``Producer``: send, then know what was acknowledged.

Every message gets a delivery callback; ``wait()`` returns only when the broker acknowledged
every message sent since the last ``wait()`` (``acks=all``, idempotence on: see
``auditstream.kafka.PRODUCER_GUARANTEES``), and raises otherwise. Traps:

- ``flush()`` returning non-zero means messages are still unacknowledged: a failure, not a
  detail. So is any delivery report with an error.
- ``produce()`` raises ``BufferError`` when the local queue is full: serve callbacks with
  ``poll`` and retry; ``poll(0)`` after every produce keeps callbacks flowing.
- A message larger than ``message.max.bytes`` is refused at ``produce()``; one larger than the
  topic's ``max.message.bytes`` is refused by the broker in its delivery report. Both come back
  as "too large" (the caller publishes a gap event), never as a failure that would stop the
  stream forever.
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
from auditstream.kafka import TopicSpec, audit_topic_config, ensure_topics

log = logging.getLogger(__name__)

_TOO_LARGE = {KafkaError.MSG_SIZE_TOO_LARGE}


class MessageTooLarge(BrokerError):
    """The client refused a message for its size (not retriable: the same bytes never fit)."""

    retriable = False


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
        self._errors: list[KafkaError] = []
        self._too_large: list[Any] = []
        self._fatal = False
        self.acked = 0

    def send(self, topic: str, value: bytes, ref: Any = None) -> None:
        """Queue ``value`` for ``topic``; ``ref`` identifies it if the broker finds it too large.

        Raises:
            MessageTooLarge: larger than the client's ``message.max.bytes``.
            BrokerError: the client refused the message for another reason.
        """
        callback = self._delivered if ref is None else partial(self._delivered_ref, ref)
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
        self._producer.poll(0)

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
        if self._errors:
            first, count = self._errors[0], len(self._errors)
            self._fatal = self._fatal or any(err.fatal() for err in self._errors)
            self._errors.clear()
            metrics.DELIVERY_ERRORS.labels(self._key.decode()).inc(count)
            raise DeliveryError(
                f"{count} message(s) not delivered: {first.str()}",
                code=first.name(),
                fatal=first.fatal() or None,
            )
        refused, self._too_large = self._too_large, []
        return refused

    def reset(self) -> None:
        """Drop whatever is still queued (after a failure; the loop re-sends from the bookmark).

        A fatal error (the idempotent producer's state is lost) needs a new client.
        """
        fatal = self._fatal or any(err.fatal() for err in self._errors)
        self._fatal = False
        self._producer.purge()
        self._producer.poll(0)
        self._producer.flush(0)
        self._errors.clear()
        self._too_large.clear()
        if fatal:
            self._producer = Producer(self._conf)

    def close(self, timeout: float = 5.0) -> int:
        """Flush what is left; return the number of messages still unacknowledged."""
        remaining: int = self._producer.flush(timeout)
        return remaining

    def _delivered(self, err: KafkaError | None, msg: Any) -> None:
        if err is None:
            self.acked += 1
        else:
            self._errors.append(err)

    def _delivered_ref(self, ref: Any, err: KafkaError | None, msg: Any) -> None:
        if err is not None and err.code() in _TOO_LARGE:
            self._too_large.append(ref)
        else:
            self._delivered(err, msg)


def ensure(
    admin_conf: dict[str, Any],
    topics: Iterable[str],
    *,
    partitions: int,
    max_message_bytes: int,
    timeout: float = 30.0,
) -> None:
    """Create the topics when missing, sized for ``max_message_bytes`` messages.

    Raises:
        BrokerError: the broker is unreachable or refused (retriable).
    """
    config = audit_topic_config(max_message_bytes)
    specs = [TopicSpec(name, partitions, config=config) for name in topics]
    ensure_topics(admin_conf, specs, timeout=timeout)
