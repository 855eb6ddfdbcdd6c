"""The one adapter around confluent-kafka's client configuration and error checks.

librdkafka settings pass through untouched (``kafka_config``); the few typed settings the
pipeline depends on for its guarantees are applied last so a pass-through cannot weaken them.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    NewTopic,
)

from auditstream.errors import BrokerAuthError, BrokerError
from auditstream.kafkalog import LOGGER, with_logger

log = logging.getLogger(__name__)

#: A 4 MB event, its flat copies and the Avro overhead fit in this many bytes per message.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024

#: A consumer's fetch asks for this much per partition and in all (a larger message still
#: comes, alone: ``consumer_config``).
FETCH_PARTITION_BYTES = 1024 * 1024
FETCH_BYTES = 4 * 1024 * 1024

#: Settings the producer guarantee (design.md, producer steps 3-4) depends on.
PRODUCER_GUARANTEES: dict[str, Any] = {"acks": "all", "enable.idempotence": True}


def producer_config(
    bootstrap_servers: str, overrides: Mapping[str, Any], **defaults: Any
) -> dict[str, Any]:
    """Librdkafka producer settings: defaults < pass-through < the guarantees."""
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap_servers,
        "message.max.bytes": MAX_MESSAGE_BYTES,
        "compression.type": "zstd",
        "linger.ms": 20,
        "logger": LOGGER,
    }
    conf.update({k.replace("_", "."): v for k, v in defaults.items()})
    conf.update(overrides)
    conf.update(PRODUCER_GUARANTEES)
    return conf


def consumer_config(
    bootstrap_servers: str, group_id: str, overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """Librdkafka consumer settings: offsets are ours to commit, after the database commit.

    Memory: librdkafka pre-fetches up to ``queued.max.messages.kbytes`` (64 MB by default; in
    practice per partition) plus the fetch responses in flight on top of the batches the loop
    holds. The queue is bounded to 2 MB (about two 1000-row batches of ~1.2 KB; 4 MB measured
    the same rate with ~14 MB more peak RSS). A fetch asks for at most ``FETCH_PARTITION_BYTES``
    per partition and ``FETCH_BYTES`` in all: the queue bound is checked only before a fetch,
    and one answer of compressed batches lands whole. With 16 MB per fetch a consumer on Apache
    Kafka peaked at 250 MB alone and 319-369 MB as one of a group or end to end; with 1 / 4 MB
    at 156-163 MB (BENCHMARKS.md, session 5). A message larger than both still arrives: a
    broker answers with the first record batch even when it is over the limits (KIP-74), so
    progress never needs a fetch as large as the largest message (a test on each broker).

    Trap: once a partition's queue is over that bound, librdkafka postpones its next fetch by
    ``fetch.queue.backoff.ms`` (1000 by default), and a consumer that drains 2 MB in less than
    a second then waits in ``consume()`` for the rest of it. 20 ms keeps the queue topped up.
    """
    conf: dict[str, Any] = {
        "bootstrap.servers": bootstrap_servers,
        "group.id": group_id,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
        "fetch.max.bytes": FETCH_BYTES,
        "max.partition.fetch.bytes": FETCH_PARTITION_BYTES,
        "queued.max.messages.kbytes": 2048,
        "fetch.queue.backoff.ms": 20,
        "isolation.level": "read_committed",
        "logger": LOGGER,
    }
    conf.update(overrides)
    conf.update({"enable.auto.commit": False, "enable.auto.offset.store": False})
    return conf


def check(msg: Message | None) -> Message | None:
    """Return ``msg`` when it carries data, ``None`` for nothing/partition EOF; raise on errors.

    Every poll goes through here so that ``msg.error()`` can never be forgotten.

    Raises:
        BrokerError: the message is an error event (fatal or not).
    """
    if msg is None:
        return None
    err = msg.error()
    if err is None:
        return msg
    if err.code() == KafkaError._PARTITION_EOF:
        return None
    raise BrokerError(
        f"consumer error: {err.str()}",
        topic=msg.topic(),
        partition=msg.partition(),
        offset=msg.offset(),
        fatal=err.fatal() or None,
    )


@dataclass(frozen=True)
class TopicSpec:
    """A topic the pipeline creates when missing."""

    name: str
    partitions: int = 6
    replication_factor: int = -1  # broker default
    config: Mapping[str, str] = field(default_factory=dict)


#: Errors that no retry can mend: the TLS handshake or the SASL login was refused.
AUTH_ERRORS = frozenset(
    {KafkaError._AUTHENTICATION, KafkaError._SSL, KafkaError.SASL_AUTHENTICATION_FAILED}
)


def raise_for_auth(errors: Iterable[KafkaError], bootstrap: object) -> None:
    """Raise :class:`BrokerAuthError` for the first TLS/SASL refusal among ``errors``."""
    for err in errors:
        if err.code() in AUTH_ERRORS:
            raise BrokerAuthError(
                f"Kafka refused the connection: {err.str()} (check the Kafka user, password, "
                "CA and certificate settings)",
                bootstrap=bootstrap,
            )


def ensure_topics(
    admin_conf: Mapping[str, Any], topics: Iterable[TopicSpec], timeout: float = 30.0
) -> None:
    """Create every topic that does not exist yet; existing topics are left as they are.

    Asks for metadata in 1 s rounds so that a refused login or certificate ends the wait at
    once instead of after ``timeout``.

    Raises:
        BrokerAuthError: TLS or SASL was refused (not retriable).
        BrokerError: the broker could not be reached or refused to create a topic.
    """
    errors: list[KafkaError] = []
    conf: dict[str, Any] = {**with_logger(admin_conf), "error_cb": errors.append}
    admin = AdminClient(conf)
    specs = list(topics)
    deadline = time.monotonic() + timeout
    while True:
        try:
            existing = set(admin.list_topics(timeout=min(1.0, timeout)).topics)
            break
        except KafkaException as exc:
            admin.poll(0)  # serves error_cb
            raise_for_auth(errors, admin_conf.get("bootstrap.servers"))
            if time.monotonic() >= deadline:
                raise BrokerError(f"cannot list topics: {exc}") from exc
    new = [
        NewTopic(t.name, t.partitions, t.replication_factor, config=dict(t.config))
        for t in specs
        if t.name not in existing
    ]
    if not new:
        return
    for name, future in admin.create_topics(new, request_timeout=timeout).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args and exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise BrokerError(f"cannot create topic: {exc}", topic=name) from exc


def topic_max_message_bytes(
    admin_conf: Mapping[str, Any], topic: str, timeout: float = 30.0
) -> int | None:
    """``max.message.bytes`` of ``topic``, or None when it cannot be read (missing topic).

    Waits in 1 s rounds, like ``ensure_topics``, so that a refused login or certificate ends
    the wait at once (``BrokerAuthError``) instead of after ``timeout``.

    Raises:
        BrokerAuthError: TLS or SASL was refused (not retriable).
    """
    errors: list[KafkaError] = []
    conf: dict[str, Any] = {**with_logger(admin_conf), "error_cb": errors.append}
    admin = AdminClient(conf)
    deadline = time.monotonic() + timeout
    try:
        futures = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)])
        for future in futures.values():
            while True:
                try:
                    entry = future.result(timeout=1.0).get("max.message.bytes")
                    break
                except concurrent.futures.TimeoutError:
                    admin.poll(0)  # serves error_cb
                    raise_for_auth(errors, admin_conf.get("bootstrap.servers"))
                    if time.monotonic() >= deadline:
                        return None
            if entry is not None and entry.value is not None:
                return int(entry.value)
    except (KafkaException, ValueError, TypeError):
        log.debug("cannot read max.message.bytes of %s", topic, exc_info=True)
    return None


def audit_topic_config(max_message_bytes: int = MAX_MESSAGE_BYTES) -> dict[str, str]:
    """Topic settings for audit topics: large messages, kept forever by default."""
    return {
        "max.message.bytes": str(max_message_bytes),
        "retention.ms": "-1",
        "compression.type": "producer",
    }
