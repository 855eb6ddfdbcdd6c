"""The Kafka adapter against the real (Tansu) broker: acks, keys, sizes, full queues, outages."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from auditstream.embedded import free_port
from auditstream.errors import DeliveryError
from auditstream.kafka import producer_config
from producer.publisher import MessageTooLarge, Publisher, ensure
from tests.producer.conftest import UUID

Reader = Callable[..., list[tuple[str, dict[str, Any], Any]]]


def raw_values(consumer_conf: dict[str, Any], topic: str, count: int) -> list[Any]:
    from confluent_kafka import Consumer

    from auditstream.kafka import check

    consumer = Consumer(consumer_conf)
    consumer.subscribe([topic])
    out = []
    deadline = time.monotonic() + 30
    try:
        while len(out) < count and time.monotonic() < deadline:
            msg = check(consumer.poll(0.5))
            if msg is not None:
                out.append(msg)
    finally:
        consumer.close()
    return out


def test_ensure_creates_missing_topics_with_partitions(
    bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    a, b = unique_name("ev"), unique_name("ctl")
    ensure({"bootstrap.servers": bootstrap}, [a, b], partitions=6, max_message_bytes=2**24)
    ensure({"bootstrap.servers": bootstrap}, [a, b], partitions=3, max_message_bytes=2**24)
    meta = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    assert len(meta.topics[a].partitions) == 6  # existing topics are left alone
    assert len(meta.topics[b].partitions) == 6


def test_every_message_is_acknowledged_keyed_and_in_order(
    bootstrap: str, unique_name: Callable[[str], str], consumer_conf: dict[str, Any]
) -> None:
    topic = unique_name("ev")
    ensure({"bootstrap.servers": bootstrap}, [topic], partitions=6, max_message_bytes=2**24)
    # A tiny local queue forces BufferError: the adapter must poll and retry, losing nothing.
    conf = producer_config(bootstrap, {"queue.buffering.max.messages": 5, "linger.ms": 1})
    pub = Publisher(conf, UUID)
    for i in range(300):
        pub.send(topic, b"v%d" % i)
    assert pub.wait(30) == []
    assert pub.acked == 300
    msgs = raw_values(consumer_conf, topic, 300)
    assert [m.value() for m in msgs] == [b"v%d" % i for i in range(300)]
    assert {m.key() for m in msgs} == {UUID.encode()}
    assert len({m.partition() for m in msgs}) == 1


def test_message_larger_than_the_client_limit_is_refused_not_queued(bootstrap: str) -> None:
    pub = Publisher(producer_config(bootstrap, {}, message_max_bytes=10_000), UUID)
    with pytest.raises(MessageTooLarge) as info:
        pub.send("any", b"x" * 20_000)
    assert not info.value.retriable
    assert pub.wait(5) == []


def test_broker_unavailable_is_a_delivery_error_and_reset_drops_the_queue() -> None:
    dead = f"127.0.0.1:{free_port()}"
    pub = Publisher(producer_config(dead, {"message.timeout.ms": 1500}), UUID)
    pub.send("t", b"lost")
    with pytest.raises(DeliveryError) as info:
        pub.wait(10)
    assert info.value.retriable
    pub.reset()
    assert pub.close(1) == 0
