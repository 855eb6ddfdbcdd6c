"""``--once`` finishes only after the group answered: an assignment (possibly empty) or an error.

Before, a member that was never assigned anything could exit 0 having read nothing.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest
from confluent_kafka import Consumer

from auditstream.dsn import MySQLDsn
from auditstream.errors import BrokerError
from consumer.__main__ import build
from tests.consumer.conftest import RecordFactory, query
from tests.consumer.kafkatools import create_topics, produce, settings

SERVER = "00000000-0000-0000-0000-000000000001"


@pytest.mark.real_kafka  # Tansu gives the late member a partition at once (no cooperative round)
def test_once_logs_an_empty_assignment_and_does_not_wait_for_data(
    bootstrap: str,
    archive: MySQLDsn,
    names: dict[str, str],
    records: RecordFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The late member's share stays empty (the holder keeps its partition): it says so and
    stops once the group has been quiet for ``empty_settle`` seconds."""
    create_topics(bootstrap, names["topic"], names["control"], partitions=1)
    produce(bootstrap, names["topic"], records(SERVER, 50))
    holder = build(settings(bootstrap, archive.url(reveal=True), names))
    holder_stop = time.monotonic() + 60
    # The first member takes the partition and keeps it (cooperative-sticky).
    holder.consumer.subscribe([names["topic"], names["control"]], on_assign=holder._on_assign)
    while not holder.progress.stored and time.monotonic() < holder_stop:
        holder.consumer.poll(0.2)
    assert holder.progress.stored, "the first member was never assigned"
    done = threading.Event()
    # The holder keeps polling (without archiving) so that it takes part in the rebalance.
    polling = threading.Thread(
        target=lambda: [holder.consumer.poll(0.1) for _ in iter(done.is_set, True)]
    )
    polling.start()
    try:
        late = build(settings(bootstrap, archive.url(reveal=True), names, once=True))
        with caplog.at_level(logging.INFO, logger="consumer.loop"):
            assert late.run() == 0
        assert "assigned no partitions" in caplog.text
        assert query(archive, "SELECT COUNT(*) FROM audit_data") == [(0,)]
    finally:
        done.set()
        polling.join()
        holder.consumer.close()
        holder.dlq.close()
        holder.sink.close()


@pytest.mark.real_kafka
def test_once_fails_when_the_group_never_assigns(
    bootstrap: str, archive: MySQLDsn, names: dict[str, str]
) -> None:
    """The group is held by a member of another assignment protocol: the join is refused."""
    create_topics(bootstrap, names["topic"], names["control"], partitions=1)
    other = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": names["group"],
            "partition.assignment.strategy": "range",
            "session.timeout.ms": 6000,
        }
    )
    other.subscribe([names["topic"]])
    deadline = time.monotonic() + 30
    while not other.assignment() and time.monotonic() < deadline:
        other.poll(0.2)
    try:
        loop = build(settings(bootstrap, archive.url(reveal=True), names, once=True))
        loop.assignment_timeout = 5.0
        started = time.monotonic()
        with pytest.raises(BrokerError, match="no partition assignment") as caught:
            loop.run()
        assert time.monotonic() - started < 30
        assert caught.value.exit_code == 3
        loop.sink.close()
    finally:
        other.close()


@pytest.mark.real_kafka  # Tansu has no cooperative rounds: the late member gets a partition at once
def test_once_after_an_empty_round_takes_the_partition_its_holder_leaves(
    bootstrap: str, archive: MySQLDsn, names: dict[str, str], records: RecordFactory
) -> None:
    """An empty first round is not the member's final share: the holder leaves, the late
    ``--once`` member is handed the partition in the next round and archives what it holds.

    Before, ``--once`` returned at the empty round and the 50 events were archived by nobody.
    """
    create_topics(bootstrap, names["topic"], names["control"], partitions=1)
    produce(bootstrap, names["topic"], records(SERVER, 50))
    holder = build(settings(bootstrap, archive.url(reveal=True), names))
    holder.consumer.subscribe([names["topic"], names["control"]], on_assign=holder._on_assign)
    deadline = time.monotonic() + 60
    while not holder.progress.stored and time.monotonic() < deadline:
        holder.consumer.poll(0.2)
    assert holder.progress.stored, "the first member was never assigned"
    late = build(settings(bootstrap, archive.url(reveal=True), names, once=True))
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(late.run()))
    runner.start()
    try:
        # The holder takes part in the rebalance until the late member has had its empty round.
        while not late._joined and time.monotonic() < deadline:
            holder.consumer.poll(0.1)
        assert late._joined and not late.progress.stored, "the late member's first round"
    finally:
        holder.consumer.close()  # leaves the group: the next round gives the partition away
        holder.dlq.close()
        holder.sink.close()
    runner.join(90)
    assert result == [0]
    assert query(archive, "SELECT COUNT(*) FROM audit_data") == [(50,)]
