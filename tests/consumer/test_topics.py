"""``consumer.topics.TopicWatch`` against the real broker: a missing topic is seen when created."""

from __future__ import annotations

import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError

from auditstream.kafka import TopicSpec, consumer_config, ensure_topics
from consumer.topics import TopicWatch


def test_other_errors_and_other_topics_are_not_missing_topics() -> None:
    watch = TopicWatch(["ev", "ctl"])
    assert not watch.reported("ev", KafkaError._TRANSPORT)
    assert not watch.reported("elsewhere", KafkaError.UNKNOWN_TOPIC_OR_PART)
    assert watch.missing == set()


def test_a_missing_topic_is_reported_then_found_once_created(
    bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topic = unique_name("late")
    consumer = Consumer(consumer_config(bootstrap, unique_name("grp"), {}))
    try:
        watch = TopicWatch([topic], interval=0.2)
        assert watch.reported(topic, KafkaError.UNKNOWN_TOPIC_OR_PART)
        watch.poll(consumer)
        assert watch.missing == {topic}  # not created yet: still waiting
        ensure_topics({"bootstrap.servers": bootstrap}, [TopicSpec(topic, 2)])
        deadline = time.monotonic() + 10
        while watch.missing and time.monotonic() < deadline:
            time.sleep(0.2)
            watch.poll(consumer)
        assert watch.missing == set()
    finally:
        consumer.close()
