"""Two batches at once (one in its transaction, the next polled): a rebalance in between.

The transaction is held on a locked high-water mark (``writes_held``), so the overlap is not a
matter of timing: the member is caught with batch N in the database and batch N+1 in memory
when a second member joins the group and takes partitions away.
"""

from __future__ import annotations

from auditstream.dsn import MySQLDsn
from consumer.__main__ import build
from tests.consumer.conftest import (
    RecordFactory,
    in_function,
    query,
    running,
    wait_until,
    writes_held,
)
from tests.consumer.kafkatools import committed, create_topics, produce, settings

#: Keys in three different partitions of three (librdkafka's default partitioner, CRC-32).
SERVERS = [f"30000000-0000-0000-0000-00000000000{n}" for n in (3, 6, 0)]


def test_a_rebalance_while_two_batches_overlap_keeps_each_event_once(
    bootstrap: str, archive: MySQLDsn, records: RecordFactory, names: dict[str, str]
) -> None:
    create_topics(bootstrap, names["topic"], partitions=3)
    create_topics(bootstrap, names["control"], partitions=1)  # B's share holds a topic partition
    events = {s: records(s, 70) for s in SERVERS}
    produce(bootstrap, names["topic"], [e for s in SERVERS for e in events[s][:50]])
    conf = settings(bootstrap, archive.url(reveal=True), names, batch_rows=150)
    a = build(conf.model_copy(update={"batch_linger_ms": 60_000}))
    b = build(conf)
    with writes_held(archive, SERVERS, names["topic"]) as blocker, running(a) as runner_a:
        # Batch N (150 rows) is handed over and waits for the marks inside its transaction.
        wait_until(lambda: a.writer.busy() and not a.batch)
        produce(bootstrap, names["topic"], [e for s in SERVERS for e in events[s][50:60]])
        wait_until(lambda: len(a.batch) == 30)  # batch N+1, polled, not due for a minute
        assert a.writer.busy()
        with running(b):
            # B joins: A is asked to give partitions up while both batches are in flight,
            # and waits in the revocation for N's transaction.
            wait_until(lambda: in_function(runner_a, "_on_revoke"))
            assert a.writer.busy()
            blocker.rollback()
            wait_until(lambda: bool(b.progress.stored) and not a.writer.busy())
            a.linger = conf.batch_linger_ms / 1000  # from now on both members write promptly
            produce(bootstrap, names["topic"], [e for s in SERVERS for e in events[s][60:]])
            wait_until(lambda: _count(archive) >= 210 and a.lag.total() + b.lag.total() == 0)
            owners = (set(a.progress.stored), set(b.progress.stored))
    topic_tps = {(names["topic"], p) for p in range(3)}
    assert owners[0] & topic_tps and owners[1] & topic_tps, owners
    assert query(
        archive, "SELECT COUNT(*), COUNT(DISTINCT server_uuid, ts, id) FROM audit_data"
    ) == [(210, 210)]
    assert {r[0] for r in query(archive, "SELECT raw FROM audit_data")} == {
        e["raw"] for s in SERVERS for e in events[s]
    }
    stored = dict(
        query(
            archive,
            "SELECT kafka_partition, next_offset FROM audit_offsets WHERE topic = %s",
            (names["topic"],),
        )
    )
    assert sorted(stored.values()) == [70, 70, 70]  # one server per partition: each moved
    assert committed(bootstrap, names["group"], names["topic"], 3) == stored


def _count(archive: MySQLDsn) -> int:
    return int(query(archive, "SELECT COUNT(*) FROM audit_data")[0][0])
