"""The loop against the real broker and MariaDB: every event once, poison in the DLQ, --once."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import fastavro
from confluent_kafka import TopicPartition as KafkaTP

from auditstream.dsn import MySQLDsn
from auditstream.errors import ArchiveError
from consumer.__main__ import build
from consumer.batch import Batch, Item
from consumer.decode import prepare
from consumer.setup import setup
from consumer.sink import Sink
from schemas import registry
from schemas.codec import RegistryCodec
from tests.consumer.conftest import RecordFactory, query
from tests.consumer.kafkatools import CODEC, committed, create_topics, produce, read_all, settings
from tests.harness.mariadb import PrivateMariaDB

SERVERS = [f"00000000-0000-0000-0000-00000000000{n}" for n in range(3)]


def poison() -> list[tuple[bytes | None, bytes]]:
    """Garbage, an unknown schema fingerprint, a truncated body."""
    good = fastavro_body()
    return [
        (SERVERS[0].encode(), b"\x00\x01garbage that is no Avro at all"),
        (SERVERS[0].encode(), b"\xc3\x01" + b"\x13" * 8 + good),
        (
            SERVERS[1].encode(),
            b"\xc3\x01" + registry.fingerprint64(registry.current("audit_event")) + good[:5],
        ),
    ]


def fastavro_body() -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(
        buf, registry.current("control_event"), {"server_uuid": "x", "kind": "heartbeat", "at": 0}
    )
    return buf.getvalue()


def test_once_archives_every_event_exactly_once_and_dead_letters_poison(
    bootstrap: str, archive: MySQLDsn, records: RecordFactory, names: dict[str, str]
) -> None:
    create_topics(bootstrap, names["topic"], names["control"])
    events = [r for s in SERVERS for r in records(s, 400)]
    bad_ts = records(SERVERS[2], 1, first=400)[0]
    bad_ts["timestamp"] = datetime(1, 1, 1, tzinfo=UTC)
    too_long = records(SERVERS[2], 1, first=401)[0]
    too_long["account_user"] = "x" * 1000
    produce(bootstrap, names["topic"], [*events, bad_ts, too_long], raw_values=poison())
    control = [
        {"server_uuid": SERVERS[0], "kind": "gap", "at": datetime.now(UTC), "reason": "oversized",
         "from_timestamp": "2024-03-01 12:00:01", "from_id": 3, "events": 1, "size": 5_000_000},
        {"server_uuid": SERVERS[1], "kind": "heartbeat", "at": datetime.now(UTC), "lag_seconds": 0.5},
    ]  # fmt: skip
    produce(bootstrap, names["control"], control, schema="control_event")

    loop = build(settings(bootstrap, archive.url(reveal=True), names, once=True, batch_rows=250))
    try:
        assert loop.run() == 0
    finally:
        loop.sink.close()

    count = query(archive, "SELECT COUNT(*), COUNT(DISTINCT server_uuid, ts, id) FROM audit_data")
    assert count == [(1200, 1200)]
    raws = {r[0] for r in query(archive, "SELECT raw FROM audit_data")}
    assert raws == {e["raw"] for e in events}
    assert query(archive, "SELECT kind, reason, size FROM audit_control ORDER BY kind") == [
        ("gap", "oversized", 5_000_000),
        ("heartbeat", None, None),
    ]
    dead = read_all(bootstrap, names["dlq"], 5)
    assert len(dead) == 5
    headers = [dict(m.headers()) for m in dead]
    assert sorted(h["dlq.error.class"].decode() for h in headers) == [
        "ArchiveContentError", "DecodeError", "DecodeError", "DecodeError", "InvalidRecord",
    ]  # fmt: skip
    assert all(h["dlq.source.topic"].decode() == names["topic"] for h in headers)
    garbage = next(m for m in dead if m.value().startswith(b"\x00\x01garbage"))
    assert garbage.key() == SERVERS[0].encode()
    assert dict(garbage.headers())["origin"] == b"test"
    # The archive's offsets cover every message; Kafka holds the same copy; nothing lags.
    stored = dict(
        query(
            archive,
            "SELECT kafka_partition, next_offset FROM audit_offsets WHERE topic = %s",
            (names["topic"],),
        )
    )
    assert sum(o or 0 for o in stored.values()) == 1205
    assert committed(bootstrap, names["group"], names["topic"], 3) == {
        p: (o if o is not None else -1001) for p, o in stored.items()
    }
    assert loop.lag.total() == 0


def test_second_run_resumes_from_archive_offsets_and_skips_resends_across_rotation(
    bootstrap: str, archive: MySQLDsn, records: RecordFactory, names: dict[str, str]
) -> None:
    create_topics(bootstrap, names["topic"], names["control"])
    first = records(SERVERS[0], 300)
    produce(bootstrap, names["topic"], first)
    conf = settings(bootstrap, archive.url(reveal=True), names, once=True)
    run_once(conf)
    # Rotation by another process between the two sends.
    query(archive, "CREATE TABLE audit_data_new LIKE audit_data_template")
    query(
        archive,
        "RENAME TABLE audit_data TO audit_data_20240301_120000, audit_data_new TO audit_data",
    )
    # The producer crashed before its bookmark moved: it re-sends 250.. and goes on.
    produce(bootstrap, names["topic"], first[250:] + records(SERVERS[0], 100, first=300))
    run_once(conf)
    assert query(archive, "SELECT COUNT(*) FROM audit_data_20240301_120000") == [(300,)]
    assert query(archive, "SELECT COUNT(*), MIN(kafka_offset) FROM audit_data") == [(100, 350)]
    both = query(
        archive,
        "SELECT COUNT(*) FROM (SELECT server_uuid, ts, id FROM audit_data UNION ALL "
        "SELECT server_uuid, ts, id FROM audit_data_20240301_120000) u",
    )
    assert both == [(400,)]


def test_archive_restart_is_waited_out_without_loss_or_duplicates(
    bootstrap: str, records: RecordFactory, names: dict[str, str]
) -> None:
    server = PrivateMariaDB().start()
    try:
        dsn = server.dsn.with_database("a_archive")
        setup(dsn)
        create_topics(bootstrap, names["topic"], names["control"])
        events = records(SERVERS[1], 2000)
        produce(bootstrap, names["topic"], events[:1000])
        loop = build(
            settings(bootstrap, dsn.url(reveal=True), names, batch_rows=100, backoff_max=1.0)
        )
        runner = threading.Thread(target=loop.run)
        runner.start()
        seen_lag: list[int] = []
        try:
            _wait(lambda: bool(seen_lag.append(loop.lag.total())) or _count(dsn) >= 300)
            server.kill()  # the archive dies mid-stream (no clean shutdown)
            produce(bootstrap, names["topic"], events[1000:])
            time.sleep(2)
            server.start()
            _wait(lambda: _count(dsn) == 2000, timeout=60)
            _wait(lambda: loop.lag.total() == 0)
        finally:
            loop.stop()
            runner.join(30)
            loop.sink.close()
        assert not runner.is_alive()
        assert max(seen_lag) > 0  # lag was visible while the member was behind
        assert query(
            dsn, "SELECT COUNT(DISTINCT server_uuid, ts, id), COUNT(*) FROM audit_data"
        ) == [(2000, 2000)]
        assert query(
            dsn, "SELECT SUM(next_offset) FROM audit_offsets WHERE topic = %s", (names["topic"],)
        ) == [(2000,)]
    finally:
        server.cleanup()


def test_both_framings_in_one_topic(
    bootstrap: str, archive: MySQLDsn, records: RecordFactory, names: dict[str, str]
) -> None:
    """Values written with and without a Schema Registry decode side by side."""
    create_topics(bootstrap, names["topic"], names["control"], partitions=1)
    codec = RegistryCodec("mock://both-framings")  # in-process: shared with the loop below
    events = records(SERVERS[0], 60)
    produce(bootstrap, names["topic"], events[:30])  # single-object encoding
    confluent = [
        (e["server_uuid"].encode(), codec.encode("audit_event", e, names["topic"]))
        for e in events[30:]
    ]
    assert all(v[0] == 0 for _, v in confluent)
    produce(bootstrap, names["topic"], [], raw_values=confluent)
    loop = build(settings(bootstrap, archive.url(reveal=True), names, once=True), codec=codec)
    try:
        assert loop.run() == 0
    finally:
        loop.sink.close()
    assert {r[0] for r in query(archive, "SELECT raw FROM audit_data")} == {
        e["raw"] for e in events
    }


def test_a_member_that_lost_its_partition_does_not_overwrite_newer_offsets(
    bootstrap: str, archive: MySQLDsn, records: RecordFactory, names: dict[str, str]
) -> None:
    """While A holds a batch, B (the partition's new owner) archives it and moves the offset on.

    A's write is fenced: it writes nothing, the offset row still names B, and A re-seeks.
    """
    create_topics(bootstrap, names["topic"], names["control"], partitions=1)
    events = records(SERVERS[0], 100)
    produce(bootstrap, names["topic"], events)
    a = build(settings(bootstrap, archive.url(reveal=True), names, batch_linger_ms=3000))
    runner = threading.Thread(target=a.run)
    runner.start()
    b = Sink(archive, "member-B")
    try:
        _wait(lambda: len(a.batch) == 100)
        tp = (names["topic"], 0)
        _archive_as(b, tp, events, names["control"], b.stored_offsets([tp]))
        _wait(lambda: len(a.batch) == 0 and a.progress.stored.get(tp) == 100)
    finally:
        a.stop()
        runner.join(30)
        a.sink.close()
        b.close()
    assert query(
        archive, "SELECT next_offset, member FROM audit_offsets WHERE topic = %s", (names["topic"],)
    ) == [(100, "member-B")]
    assert query(archive, "SELECT COUNT(*) FROM audit_data") == [(100,)]


def test_a_fence_during_a_retry_backoff_does_not_leave_the_partitions_paused(
    bootstrap: str, archive: MySQLDsn, records: RecordFactory, names: dict[str, str]
) -> None:
    """A's write fails (connection lost) after B archived the same batch: A pauses, retries, is
    fenced, and the fence empties its batch. A must resume its partitions and archive what
    comes next (it stayed paused for ever: only a successful write resumed them).
    """
    create_topics(bootstrap, names["topic"], names["control"], partitions=1)
    events = records(SERVERS[0], 150)
    produce(bootstrap, names["topic"], events[:100])
    a = build(settings(bootstrap, archive.url(reveal=True), names, backoff_max=0.5))
    b = Sink(archive, "member-B")
    tp = (names["topic"], 0)
    real_write = a.sink.write
    calls = []

    def write_after_b(prepared: Any, expected: Any, dead_letter: Any) -> Any:
        calls.append(len(prepared.audit))
        if len(calls) == 1:  # B archives the batch, then A's connection is "lost"
            _archive_as(b, tp, events[:100], names["control"], expected)
            raise ArchiveError("connection lost (injected after B's commit)")
        return real_write(prepared, expected, dead_letter)

    a.sink.write = write_after_b  # type: ignore[method-assign]
    runner = threading.Thread(target=a.run)
    runner.start()
    try:
        _wait(lambda: a.progress.stored.get(tp) == 100 and len(calls) >= 2)
        produce(bootstrap, names["topic"], events[100:])
        _wait(lambda: _count(archive) == 150)
    finally:
        a.stop()
        runner.join(30)
        a.sink.close()
        b.close()
    assert query(
        archive, "SELECT next_offset, member FROM audit_offsets WHERE topic = %s", (names["topic"],)
    ) == [(150, a.sink._member)]
    assert query(archive, "SELECT COUNT(*), COUNT(DISTINCT ts, id) FROM audit_data") == [(150, 150)]


class _LosesAfterFailure:
    """The loop's consumer, whose ``consume`` reports partition 0 lost once a write failed.

    librdkafka calls ``on_lost`` from inside ``consume()`` on the loop's thread; so does this.
    """

    def __init__(self, real: Any, loop: Any, topic: str, failed: threading.Event) -> None:
        self._real, self._loop, self._topic, self._failed = real, loop, topic, failed
        self.lost = threading.Event()

    def consume(self, *args: Any) -> Any:
        if self._failed.is_set() and not self.lost.is_set():
            self._loop._on_lost(self._real, [KafkaTP(self._topic, 0)])
            self.lost.set()
        return self._real.consume(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_a_backoff_whose_batch_was_lost_resumes_the_partitions_kept(
    bootstrap: str, archive: MySQLDsn, records: RecordFactory, names: dict[str, str]
) -> None:
    """A write of partition 0's batch fails; during the backoff partition 0 is lost, which
    empties the batch. Partition 1, paused by the failure, must be read again once the backoff
    is over (it stayed paused for ever: only a successful write resumed it).
    """
    create_topics(bootstrap, names["topic"], names["control"], partitions=2)
    first, later = records(SERVERS[0], 30), records(SERVERS[1], 40)
    produce(bootstrap, names["topic"], first, partition=0)
    a = build(settings(bootstrap, archive.url(reveal=True), names, backoff_max=0.5))
    failed = threading.Event()

    def fail_partition_0(prepared: Any, expected: Any, dead_letter: Any) -> Any:
        failed.set()
        raise ArchiveError("connection lost (injected)")

    a.sink.write = fail_partition_0  # type: ignore[method-assign]
    wrapper = _LosesAfterFailure(a.consumer, a, names["topic"], failed)
    a.consumer = wrapper  # type: ignore[assignment]
    runner = threading.Thread(target=a.run)
    runner.start()
    try:
        _wait(wrapper.lost.is_set)
        assert not a.batch  # the lost partition's batch is gone
        del a.sink.write  # the archive answers again
        produce(bootstrap, names["topic"], later, partition=1)
        _wait(lambda: _count(archive) == len(later))
    finally:
        a.stop()
        runner.join(30)
        a.sink.close()
    assert query(
        archive, "SELECT kafka_partition, COUNT(*) FROM audit_data GROUP BY kafka_partition"
    ) == [(1, len(later))]


class Recorder:
    """A periodic task that notes when it ran, failing (retriably) the first time."""

    def __init__(self) -> None:
        self.calls: list[datetime] = []

    def tick(self, now: datetime) -> None:
        self.calls.append(now)
        if len(self.calls) == 1:
            raise ArchiveError("rotation lock busy")


def test_periodic_tasks_run_between_batches_and_survive_retriable_errors(
    bootstrap: str, archive: MySQLDsn, records: RecordFactory, names: dict[str, str]
) -> None:
    create_topics(bootstrap, names["topic"], names["control"], partitions=1)
    produce(bootstrap, names["topic"], records(SERVERS[0], 100))
    task = Recorder()
    loop = build(settings(bootstrap, archive.url(reveal=True), names, once=True), tasks=[task])
    loop.tick_interval = 0.0
    try:
        assert loop.run() == 0
    finally:
        loop.sink.close()
    assert len(task.calls) >= 2
    assert all(c.tzinfo is UTC for c in task.calls)
    assert query(archive, "SELECT COUNT(*) FROM audit_data") == [(100,)]


def test_kafka_committed_offsets_are_never_trusted(
    bootstrap: str, archive: MySQLDsn, records: RecordFactory, names: dict[str, str]
) -> None:
    """A crash between the DB commit and the Kafka commit leaves Kafka's copy behind (or wrong).

    The member must resume from the archive's offsets whatever Kafka holds.
    """
    create_topics(bootstrap, names["topic"], names["control"], partitions=1)
    events = records(SERVERS[0], 200)
    produce(bootstrap, names["topic"], events)
    conf = settings(bootstrap, archive.url(reveal=True), names, once=True)
    run_once(conf)
    # Kafka's copy says "nothing read" (as after a crash before step 4) ...
    commit_offsets(bootstrap, names["group"], names["topic"], {0: 0})
    produce(bootstrap, names["topic"], records(SERVERS[0], 50, first=200))
    run_once(conf)
    assert query(archive, "SELECT COUNT(*), COUNT(DISTINCT ts, id) FROM audit_data") == [(250, 250)]
    # ... or claims more than the archive holds: still nothing is skipped.
    query(archive, "UPDATE audit_offsets SET next_offset = 240 WHERE topic = %s", (names["topic"],))
    query(archive, "DELETE FROM audit_data WHERE kafka_offset >= 240")
    commit_offsets(bootstrap, names["group"], names["topic"], {0: 250})
    run_once(conf)
    assert query(archive, "SELECT COUNT(*), MAX(kafka_offset) FROM audit_data") == [(250, 249)]


def run_once(conf: Any) -> None:
    loop = build(conf)
    try:
        assert loop.run() == 0
    finally:
        loop.sink.close()


def commit_offsets(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        consumer.commit(
            offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False
        )
    finally:
        consumer.close()


def _archive_as(
    sink: Sink, tp: tuple[str, int], events: list[dict[str, Any]], control: str, expected: Any
) -> None:
    """``sink`` (another member) archives ``events`` as the messages at offsets 0, 1, ... of ``tp``."""
    batch = Batch()
    for n, event in enumerate(events):
        batch.add(
            Item(tp[0], tp[1], n, event["server_uuid"].encode(), b"", None, "audit_event", event)
        )
    sink.write(prepare(batch, control, CODEC), expected, lambda letters: None)


def _count(dsn: MySQLDsn) -> int:
    try:
        return int(query(dsn, "SELECT COUNT(*) FROM audit_data")[0][0])
    except Exception:
        return -1


def _wait(cond: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")
