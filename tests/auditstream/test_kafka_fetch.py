"""The consumer's bounded fetch still delivers a message larger than every fetch bound.

``consumer_config`` asks for 1 MB per partition and 4 MB per fetch (its memory bound); a
producer may send messages up to ``MAX_MESSAGE_BYTES``. Progress then rests on the broker
answering with the first record batch even when it is over the limits (KIP-74): checked here
on the real broker of the run (Apache Kafka by default, Tansu with ``--broker tansu``).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable

from confluent_kafka import Consumer, Producer, TopicPartition

from auditstream.kafka import (
    FETCH_BYTES,
    FETCH_PARTITION_BYTES,
    MAX_MESSAGE_BYTES,
    TopicSpec,
    check,
    consumer_config,
    ensure_topics,
    producer_config,
)


def test_a_message_over_every_fetch_bound_arrives_whole_and_in_order(
    bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topic = unique_name("fetch")
    spec = TopicSpec(topic, 1, config={"max.message.bytes": str(MAX_MESSAGE_BYTES)})
    ensure_topics({"bootstrap.servers": bootstrap}, [spec])
    big = os.urandom(10 * 1024 * 1024)  # incompressible: over both bounds after zstd too
    assert len(big) > FETCH_BYTES > FETCH_PARTITION_BYTES
    sent = [b"small-%d" % i for i in range(50)] + [big] + [b"after-%d" % i for i in range(50)]
    failures: list[object] = []
    producer = Producer(producer_config(bootstrap, {}))
    for value in sent:
        producer.produce(
            topic, value, on_delivery=lambda err, _msg: failures.append(err) if err else None
        )
        producer.poll(0)
    assert producer.flush(60) == 0
    assert failures == []

    consumer = Consumer(consumer_config(bootstrap, unique_name("grp"), {}))
    consumer.assign([TopicPartition(topic, 0, 0)])
    got: list[bytes] = []
    deadline = time.monotonic() + 60
    try:
        while len(got) < len(sent) and time.monotonic() < deadline:
            for msg in consumer.consume(100, 1.0):
                if check(msg) is not None:
                    got.append(msg.value() or b"")
    finally:
        consumer.close()
    assert len(got) == len(sent)
    assert got[:50] == sent[:50] and got[51:] == sent[51:]
    assert hashlib.sha256(got[50]).digest() == hashlib.sha256(big).digest()
