"""Producing test records to, and reading back from, the real test broker."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from auditstream.kafka import TopicSpec, audit_topic_config, check, ensure_topics
from consumer.config import ConsumerSettings
from schemas.codec import SingleObjectCodec
from tests.harness.kafka import FAST_GROUP

CODEC = SingleObjectCodec()


def create_topics(bootstrap: str, *names: str, partitions: int = 3) -> None:
    ensure_topics(
        {"bootstrap.servers": bootstrap},
        [TopicSpec(n, partitions, config=audit_topic_config()) for n in names],
    )


def produce(
    bootstrap: str,
    topic: str,
    records: list[dict[str, Any]],
    schema: str = "audit_event",
    raw_values: list[tuple[bytes | None, bytes]] | None = None,
    partition: int | None = None,
) -> None:
    """Encode and produce ``records`` keyed by server_uuid (plus raw ``(key, value)`` pairs).

    ``partition``: the records' partition instead of the key's.
    """
    where = {} if partition is None else {"partition": partition}
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    errors: list[Any] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            errors.append(err)

    for record in records:
        producer.produce(
            topic,
            key=record["server_uuid"].encode(),
            value=CODEC.encode(schema, record, topic),
            on_delivery=on_delivery,
            **where,
        )
        producer.poll(0)
    for key, value in raw_values or []:
        producer.produce(
            topic, key=key, value=value, headers=[("origin", b"test")], on_delivery=on_delivery
        )
    assert producer.flush(30) == 0
    assert errors == []


def read_all(bootstrap: str, topic: str, count: int, timeout: float = 30.0) -> list[Any]:
    """Every message of ``topic`` (at least ``count``), from the beginning."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **FAST_GROUP,
        }
    )
    consumer.subscribe([topic])
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < count and time.monotonic() < deadline:
            msg = check(consumer.poll(0.5))
            if msg is not None:
                out.append(msg)
    finally:
        consumer.close()
    return out


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in tps}


def settings(bootstrap: str, archive: str, names: dict[str, str], **extra: Any) -> ConsumerSettings:
    return ConsumerSettings(
        archive_dsn=archive,
        bootstrap_servers=bootstrap,
        topic=names["topic"],
        control_topic=names["control"],
        dlq_topic=names["dlq"],
        group=names["group"],
        kafka_config={k: str(v) for k, v in FAST_GROUP.items()},
        **{"batch_linger_ms": 50, **extra},
    )
