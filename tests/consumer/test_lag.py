"""Lag: the member's own view (positions, fetch high-water marks) and Kafka's (admin API)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from prometheus_client import REGISTRY

from auditstream.dsn import MySQLDsn
from consumer.__main__ import build
from consumer.lag import Lag
from tests.consumer.conftest import RecordFactory, query
from tests.consumer.kafkatools import create_topics, produce, settings

SERVERS = [f"20000000-0000-0000-0000-00000000000{n}" for n in range(4)]


def test_lag_object_feeds_the_gauge_and_forgets_revoked_partitions() -> None:
    lag = Lag()
    lag.update(("lag-t", 0), position=10, high=25)
    lag.update(("lag-t", 1), position=7, high=5)  # a stale high-water mark: never negative
    assert lag.snapshot() == {("lag-t", 0): 15, ("lag-t", 1): 0}
    assert lag.total() == 15
    gauge = "auditstream_consumer_lag_messages"
    assert REGISTRY.get_sample_value(gauge, {"topic": "lag-t", "partition": "0"}) == 15
    lag.forget([("lag-t", 0)])
    assert lag.snapshot() == {("lag-t", 1): 0}
    assert REGISTRY.get_sample_value(gauge, {"topic": "lag-t", "partition": "0"}) is None


@pytest.fixture
def caught_up(
    bootstrap: str, archive: MySQLDsn, records: RecordFactory, unique_name: Callable[[str], str]
) -> tuple[dict[str, str], dict[int, int]]:
    """A group that archived a 3-partition topic with --once; the archive's offsets."""
    names = {k: unique_name(k) for k in ("topic", "control", "dlq", "group")}
    create_topics(bootstrap, names["topic"], names["control"], partitions=3)
    produce(bootstrap, names["topic"], [r for s in SERVERS for r in records(s, 50)])
    loop = build(settings(bootstrap, archive.url(reveal=True), names, once=True))
    try:
        assert loop.run() == 0
    finally:
        loop.sink.close()
    assert loop.lag.total() == 0
    stored = query(
        archive,
        "SELECT kafka_partition, next_offset FROM audit_offsets WHERE topic = %s",
        (names["topic"],),
    )
    return names, {int(p): int(o) for p, o in stored if o is not None}


def group_offsets(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    request = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(3)])]
    result = admin.list_consumer_group_offsets(request)[group].result(30)
    return {tp.partition: tp.offset for tp in result.topic_partitions if tp.offset >= 0}


def test_kafka_holds_the_archives_offsets_for_lag_tools(
    bootstrap: str, caught_up: tuple[dict[str, str], dict[int, int]]
) -> None:
    names, stored = caught_up
    assert sum(stored.values()) == 200
    assert group_offsets(bootstrap, names["group"], names["topic"]) == stored


@pytest.mark.real_kafka
def test_admin_api_shows_zero_lag_when_caught_up(
    bootstrap: str, caught_up: tuple[dict[str, str], dict[int, int]]
) -> None:
    names, stored = caught_up
    admin = AdminClient({"bootstrap.servers": bootstrap})
    ends = admin.list_offsets(
        {TopicPartition(names["topic"], p): OffsetSpec.latest() for p in range(3)}
    )
    end = {tp.partition: f.result(30).offset for tp, f in ends.items()}
    committed = group_offsets(bootstrap, names["group"], names["topic"])
    assert committed == stored
    assert {p: end[p] - committed.get(p, 0) for p in end} == {0: 0, 1: 0, 2: 0}
