"""Lag: the member's own view (archived offsets, fetch high-water marks, event time) and Kafka's."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from prometheus_client import REGISTRY

from auditstream.dsn import MySQLDsn
from consumer.__main__ import build
from consumer.lag import Lag
from tests.consumer.conftest import RecordFactory, query, running, wait_until, writes_held
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


def test_lag_counts_messages_until_their_transaction_commits_and_event_lag_follows(
    bootstrap: str, archive: MySQLDsn, records: RecordFactory, unique_name: Callable[[str], str]
) -> None:
    """Polled, decoded, even written but uncommitted messages are lag; only the commit counts."""
    names = {k: unique_name(k) for k in ("topic", "control", "dlq", "group")}
    create_topics(bootstrap, names["topic"], names["control"], partitions=1)
    events = records(SERVERS[0], 200)
    produce(bootstrap, names["topic"], events)
    tp = (names["topic"], 0)
    gauge = "auditstream_consumer_event_lag_seconds"
    labels = {"topic": names["topic"], "partition": "0"}
    loop = build(settings(bootstrap, archive.url(reveal=True), names, batch_rows=500))
    with writes_held(archive, SERVERS[:1], names["topic"]) as blocker, running(loop):
        wait_until(lambda: loop.progress.positions.get(tp) == 200)  # every message polled
        time.sleep(1.0)  # the loop polls on; its transaction waits for the mark
        assert loop.lag.snapshot().get(tp) == 200
        assert loop.lag.event_seconds() == {}  # nothing archived: no event time to report
        assert REGISTRY.get_sample_value(gauge, labels) is None
        blocker.rollback()  # the transaction goes through
        wait_until(lambda: loop.lag.snapshot().get(tp) == 0)
        newest = max(e["timestamp"] for e in events)
        age = (datetime.now(UTC) - newest).total_seconds()
        assert loop.lag.event_seconds()[tp] == pytest.approx(age, abs=5)
        assert REGISTRY.get_sample_value(gauge, labels) == pytest.approx(age, abs=5)
    assert query(archive, "SELECT COUNT(*) FROM audit_data") == [(200,)]
