"""Consumer faults: ``kill -9`` during batches and between the DB and Kafka commits, archive
restarts and network cuts to the archive; rotations while consuming.

Each run ends with ``reconcile``: every source event exactly once in the archive.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import pytest

from auditstream.dsn import MySQLDsn
from auditstream.kafka import TopicSpec, ensure_topics
from consumer.setup import setup as consumer_setup
from producer.bookmark import BookmarkStore
from tests.faults.pipeline import Pipeline, crashing, kill9, wait_for
from tests.harness.mariadb import PrivateMariaDB
from tests.harness.tcpproxy import TcpProxy


def published(pipe: Pipeline, count: int, seed: int = 1) -> None:
    """``count`` events written at the source and published by a producer run."""
    pipe.write(count, seed=seed)
    pipe.producer_once("--batch-events", "100")


def kill_consumers_at_random(pipe: Pipeline, seed: int) -> None:
    rng = random.Random(seed)
    published(pipe, 1500, seed)
    for _ in range(rng.randint(2, 3)):
        proc = pipe.spawn_consumer("--batch-rows", str(rng.choice([1, 20, 100, 500])))
        time.sleep(rng.uniform(1.0, 3.0))
        kill9(proc)
        assert proc.returncode == -9, pipe.log("consumer")
    pipe.consumer_once()
    pipe.assert_clean(1500)


@pytest.mark.long
@pytest.mark.parametrize("seed", [31])
def test_consumer_killed_during_batches_archives_each_event_once(
    pipeline: Pipeline, seed: int
) -> None:
    kill_consumers_at_random(pipeline, seed)


@pytest.mark.long
@pytest.mark.parametrize("seed", [41, 42, 43, 44])
def test_consumer_killed_during_batches_long(pipeline: Pipeline, seed: int) -> None:
    kill_consumers_at_random(pipeline, seed)


@pytest.mark.parametrize(
    "at",
    [
        "consumer.__main__:Consumer.commit:3",  # after the DB commit, before Kafka's
        pytest.param(  # rows inserted, transaction not committed
            "consumer.sink:Sink._commit:4", marks=pytest.mark.long
        ),
    ],
)
def test_consumer_killed_between_the_db_commit_and_the_kafka_commit(
    pipeline: Pipeline, at: str
) -> None:
    published(pipeline, 800)
    argv = crashing(pipeline.consumer_argv("--batch-rows", "100"), at)
    assert pipeline.run(argv, "consumer", timeout=60) == -9, pipeline.log("consumer")
    assert pipeline.archived() < 800  # the crash left the rest for the next member
    pipeline.consumer_once()
    pipeline.assert_clean(800)


@pytest.mark.parametrize(
    ("at", "method"),
    [
        # Batch N in its transaction (or just done), batch N+1 decoded and waiting for it.
        ("consumer.writer:Writer.wait:3", "load"),
        # N's transaction ended; its Kafka commit not made, N+1 not handed over yet.
        ("consumer.writer:Writer.wait:3:after", "insert"),
    ],
)
def test_consumer_killed_while_two_batches_overlap(
    pipeline: Pipeline, at: str, method: str
) -> None:
    """``Writer.wait`` is called when the next batch is ready while one is in its transaction:
    the crash comes exactly when two batches overlap."""
    published(pipeline, 1500)
    argv = pipeline.consumer_argv("--batch-rows", "50", "--insert-method", method, "--once")
    assert pipeline.run(crashing(argv, at), "consumer", timeout=90) == -9, pipeline.log("consumer")
    assert pipeline.archived() < 1500
    pipeline.consumer_once()
    pipeline.assert_clean(1500)


def test_rotations_while_consuming_keep_each_event_once(pipeline: Pipeline) -> None:
    """Rotate repeatedly while a member writes; a producer re-send straddles the rotations.

    The member starts before the producer has created the topics, every time: that order, when
    the member won the race, is what made this test time out (the member waited for
    librdkafka's 5-minute metadata refresh before it saw the topics).
    """
    pipeline.write(600)
    consumer = pipeline.spawn_consumer("--batch-rows", "50")
    wait_for(
        lambda: "waiting for topic" in pipeline.log("consumer"),
        60,
        lambda: pipeline.log("consumer"),
    )
    producer = pipeline.spawn_producer("--batch-events", "50")
    for n in range(4):
        time.sleep(0.7)
        pipeline.rotate()
        if n == 1:
            kill9(producer)  # its last batch is sent again by the next one, across a rotation
            pipeline.write(200, seed=2)
            producer = pipeline.spawn_producer("--batch-events", "50")
    pipeline.wait_archived(800)
    kill9(producer)
    kill9(consumer)
    pipeline.producer_once()
    pipeline.consumer_once()
    pipeline.assert_clean(800)


def test_an_events_topic_created_after_the_control_topic_is_consumed_too(
    pipeline: Pipeline,
) -> None:
    """The cause of the rotations test's timeouts: topics that appear one after the other.

    The member re-joined for the control topic and left the events topic, created a moment
    later, to librdkafka's 5-minute metadata refresh.
    """
    consumer = pipeline.spawn_consumer("--batch-rows", "50")
    wait_for(
        lambda: "waiting for topic" in pipeline.log("consumer"),
        60,
        lambda: pipeline.log("consumer"),
    )
    ensure_topics({"bootstrap.servers": pipeline.bootstrap}, [TopicSpec(pipeline.control, 6)])
    wait_for(
        lambda: f"assigned [(('{pipeline.control}', 0)" in pipeline.log("consumer"),
        30,
        lambda: pipeline.log("consumer"),
    )
    published(pipeline, 300)  # the producer creates the events topic now
    pipeline.wait_archived(300, timeout=45)
    kill9(consumer)
    pipeline.assert_clean(300)


@pytest.mark.long
def test_rotation_killed_after_the_rename_is_adopted_and_uploaded(pipeline: Pipeline) -> None:
    published(pipeline, 300)
    pipeline.consumer_once()
    argv = crashing(pipeline.rotate_argv(), "consumer.ledger:Ledger.record_rotated:1")
    assert pipeline.run(argv, "rotate") == -9, pipeline.log("rotate")
    published(pipeline, 100, seed=2)
    pipeline.consumer_once()
    pipeline.rotate()  # adopts the orphaned table into the ledger, then rotates the new rows
    pipeline.upload(pipeline.file_target())
    report = pipeline.assert_clean(400)
    assert report.keys["dump"] == 400


@pytest.mark.parametrize(
    "at",
    [
        "consumer.targets:FileStore.put_file:2",  # some objects written, manifest not
        pytest.param(  # uploaded, not yet verified
            "consumer.ledger:Ledger.advance:2:after", marks=pytest.mark.long
        ),
    ],
)
def test_upload_killed_midway_resumes_to_verified_dumps(pipeline: Pipeline, at: str) -> None:
    published(pipeline, 500)
    pipeline.consumer_once()
    pipeline.rotate()
    target = pipeline.file_target()
    argv = crashing(pipeline.upload_argv(target), at)
    assert pipeline.run(argv, "upload") == -9, pipeline.log("upload")
    pipeline.upload(target)
    report = pipeline.assert_clean(500)
    assert report.keys["dump"] == 500


@pytest.fixture
def own_archive(tmp_path: Any) -> Any:
    server = PrivateMariaDB(base=tmp_path / "archive-db").start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.mark.long
def test_archive_db_killed_and_restarted_while_consuming(
    pipeline_factory: Callable[..., Pipeline], own_archive: PrivateMariaDB
) -> None:
    pipe = pipeline_factory()
    pipe.archive = own_archive.dsn.with_database("a_archive")
    consumer_setup(pipe.archive)
    BookmarkStore(pipe.archive).setup()
    published(pipe, 1200)
    consumer = pipe.spawn_consumer("--batch-rows", "100")
    wait_for(lambda: pipe.archived() >= 200, 60, lambda: pipe.log("consumer"))
    own_archive.kill()
    time.sleep(1.0)
    own_archive.start()
    pipe.wait_archived(1200)
    assert consumer.poll() is None, pipe.log("consumer")
    kill9(consumer)
    pipe.assert_clean(1200)


def test_network_cut_and_stall_between_consumer_and_archive(
    pipeline: Pipeline, mysql_server: Any
) -> None:
    published(pipeline, 600)
    server: MySQLDsn = mysql_server.dsn
    with TcpProxy(server.host, server.port) as proxy:
        via = pipeline.archive.model_copy(update={"port": proxy.port})
        consumer = pipeline.spawn_consumer("--batch-rows", "25", archive=via)
        wait_for(lambda: pipeline.archived() >= 100, 60, lambda: pipeline.log("consumer"))
        proxy.cut()
        time.sleep(1.5)
        proxy.heal()
        wait_for(lambda: pipeline.archived() >= 350, 60, lambda: pipeline.log("consumer"))
        proxy.stall()
        time.sleep(1.5)
        proxy.heal()
        pipeline.wait_archived(600)
        assert consumer.poll() is None, pipeline.log("consumer")
        kill9(consumer)
    pipeline.assert_clean(600)
