"""What only Apache Kafka shows: group takeover after ``kill -9``, a broker crash under
idempotent produce, consumers that start before their topics exist.

Each run ends with ``reconcile``: every source event exactly once in Kafka and the archive.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from auditstream.kafkalog import with_logger
from tests.faults.pipeline import Pipeline, kill9, make_pipeline, wait_for
from tests.harness.emulator_fixtures import EmulatorHandle
from tests.harness.kafka import KafkaBroker, chosen_broker
from tests.harness.mariadb import drop_database

pytestmark = pytest.mark.real_kafka


def owners(pipe: Pipeline) -> dict[str, list[int]]:
    """``client.id`` -> partitions of the event topic it is assigned, from the group coordinator."""
    admin = AdminClient(with_logger({"bootstrap.servers": pipe.bootstrap}))
    group = admin.describe_consumer_groups([pipe.group])[pipe.group].result(timeout=10)
    return {
        m.client_id: sorted(
            tp.partition for tp in m.assignment.topic_partitions if tp.topic == pipe.topic
        )
        for m in group.members
    }


def test_three_members_one_killed_mid_stream_archive_each_event_once(pipeline: Pipeline) -> None:
    """The member holding the data is ``kill -9``ed while events flow; a survivor takes over."""
    pipeline.write(100)
    pipeline.producer_once("--batch-events", "50")  # creates the topics
    members = {
        f"m{i}": pipeline.spawn_consumer("--batch-rows", "50", "--kafka-config", f"client.id=m{i}")
        for i in range(3)
    }
    pipeline.wait_archived(100)
    wait_for(lambda: len(owners(pipeline)) == 3, 30, lambda: str(owners(pipeline)))
    producer = pipeline.spawn_producer("--batch-events", "50")
    victim = data_holder(pipeline)
    total = 100
    for chunk in range(20):
        total += pipeline.write(200, seed=chunk + 2)
        if chunk == 6:  # kill once the new events flow (under load that can take seconds)
            wait_for(lambda: pipeline.archived() > 100, 60, lambda: "the stream is not flowing")
            kill9(members[victim])
        time.sleep(0.3)
    pipeline.wait_archived(total, timeout=120)
    time.sleep(2.0)  # a late duplicate would land now
    survivors = [m for m in members if m != victim]
    assert all(members[m].poll() is None for m in survivors), pipeline.log("consumer")
    assert producer.poll() is None, pipeline.log("producer")
    assert data_holder(pipeline) in survivors
    pipeline.stop_all()
    pipeline.assert_clean(total)


def data_holder(pipe: Pipeline) -> str:
    """The member assigned the partition that has the events.

    One server's events share one key, so one partition: one member of the three holds them.
    """
    from confluent_kafka import Consumer, TopicPartition

    probe = Consumer(
        with_logger({"bootstrap.servers": pipe.bootstrap, "group.id": pipe.group + "-probe"})
    )
    try:
        meta = probe.list_topics(pipe.topic, timeout=10).topics[pipe.topic]
        filled = {
            p
            for p in meta.partitions
            if probe.get_watermark_offsets(TopicPartition(pipe.topic, p), timeout=10)[1] > 0
        }
    finally:
        probe.close()
    holders = [m for m, parts in owners(pipe).items() if filled & set(parts)]
    assert len(holders) == 1, (filled, owners(pipe))
    return holders[0]


def test_consumers_started_before_the_topics_exist_archive_within_seconds(
    pipeline: Pipeline,
) -> None:
    """Members subscribe to topics no one created yet; the producer creates them later."""
    consumers = [pipeline.spawn_consumer("--batch-rows", "50") for _ in range(2)]
    time.sleep(5.0)  # long enough for a metadata refresh to find no topic
    assert all(c.poll() is None for c in consumers), pipeline.log("consumer")
    pipeline.write(300)
    pipeline.producer_once("--batch-events", "100")
    created = time.monotonic()
    pipeline.wait_archived(300, timeout=60)
    took = time.monotonic() - created
    pipeline.stop_all()
    pipeline.assert_clean(300)
    print(f"archived {took:.1f} s after the producer created the topics")
    assert took < 30, f"archived {took:.1f} s after the topics were created"


@pytest.fixture
def own_kafka() -> Iterator[KafkaBroker]:
    """A broker of this test's own: it is killed and restarted."""
    broker = KafkaBroker().start()
    try:
        yield broker
    finally:
        broker.cleanup()


def test_broker_killed_and_restarted_mid_stream_loses_and_duplicates_nothing(
    request: pytest.FixtureRequest,
    emulator_factory: Callable[..., EmulatorHandle],
    mysql_server: Any,
    tmp_path: Path,
) -> None:
    """``kill -9`` of the only broker while a producer and a consumer follow the log."""
    if chosen_broker(request.config) != "kafka":
        pytest.skip("needs the embedded Apache Kafka (a cluster not ours is not killed)")
    broker: KafkaBroker = request.getfixturevalue("own_kafka")
    pipe = make_pipeline(emulator_factory(), broker.bootstrap, mysql_server.dsn, tmp_path)
    try:
        pipe.write(1500)
        producer = pipe.spawn_producer("--batch-events", "50")
        consumer = pipe.spawn_consumer("--batch-rows", "50")
        pipe.wait_archived(200)
        broker.kill()
        pipe.write(500, seed=2)  # read while the broker is down: held, retried, never skipped
        time.sleep(3.0)
        broker.start()
        pipe.write(500, seed=3)
        pipe.wait_archived(2500, timeout=180)
        time.sleep(2.0)
        assert producer.poll() is None and consumer.poll() is None, pipe.log("producer")
        kill9(producer)
        kill9(consumer)
        pipe.assert_clean(2500)
    finally:
        pipe.stop_all()
        drop_database(pipe.archive)


def test_an_event_near_the_4_mb_read_buffer_goes_end_to_end(pipeline: Pipeline) -> None:
    """One event just under the 4 MB page: one Kafka message of several MB, one archive row."""
    pipeline.write(20)
    query = "SELECT '" + "x" * 3_900_000 + "'"
    pipeline.emu.writer.write(  # stamped now: after the generated events
        {"class": "general", "event": "status", "general_data": {"query": query}}
    )
    pipeline.written += 1
    pipeline.producer_once("--read-buffer-size", str(4 * 1024 * 1024), "--batch-events", "5")
    pipeline.consumer_once()
    assert pipeline.archived() == 21
    pipeline.assert_clean(21)
