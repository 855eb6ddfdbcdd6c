"""The writer thread on the real MariaDB: two batches handed over, one transaction each, in order.

The second batch's compare-and-set expects the offsets the first stores; it must run only if the
first committed, and otherwise come back untouched (``Skipped``) so that both are retried.
"""

from __future__ import annotations

from typing import Any

from auditstream.dsn import MySQLDsn
from consumer.batch import Batch, DeadLetter
from consumer.decode import prepare
from consumer.errors import Fenced
from consumer.sink import Sink
from consumer.writer import Skipped, Writer
from tests.consumer.conftest import RecordFactory
from tests.consumer.test_sink import CODEC, CONTROL, SERVER, TOPIC, Query, batch_of

TP = (TOPIC, 0)


def _hand_over(writer: Writer, batch: Batch, stored: int | None) -> None:
    """As the loop does: expect what is stored, or what the batches handed over will store."""
    prepared = prepare(batch, CONTROL, CODEC, lines=True)
    expected: dict[tuple[str, int], int | None] = {TP: stored}
    expected.update(
        {tp: o for tp, o in writer.pending_offsets().items() if tp in prepared.next_offsets}
    )
    writer.submit(batch, prepared, expected)


def _outcomes(writer: Writer) -> list[Any]:
    out = []
    while writer.busy():
        writer.wait()
        out.append(writer.take()[1])
    return out


def test_two_batches_handed_over_commit_in_order(
    archive: MySQLDsn, records: RecordFactory, sql_query: Query
) -> None:
    recs = records(SERVER, 30)
    dead: list[DeadLetter] = []
    sink = Sink(archive, "member-a", "load")
    writer = Writer(sink, dead.extend)
    try:
        _hand_over(writer, batch_of(recs[:10], 0), None)
        _hand_over(writer, batch_of(recs[10:30], 10), None)  # expects 10, from the first
        assert writer.full()
        first, second = _outcomes(writer)
    finally:
        writer.close()
        sink.close()
    assert (first.inserted, second.inserted) == (10, 20)
    assert sql_query("SELECT COUNT(*), COUNT(DISTINCT ts, id) FROM audit_data") == [(30, 30)]
    assert sql_query("SELECT next_offset FROM audit_offsets WHERE kafka_partition = 0") == [(30,)]
    assert dead == []


def test_the_batch_behind_a_fenced_one_is_not_started(
    archive: MySQLDsn, records: RecordFactory, sql_query: Query
) -> None:
    recs = records(SERVER, 40)
    dead: list[DeadLetter] = []
    other = Sink(archive, "member-b", "load")
    other.write(prepare(batch_of(recs[:5], 0), CONTROL, CODEC), {TP: None}, dead.extend)
    other.close()
    sink = Sink(archive, "member-a", "load")
    writer = Writer(sink, dead.extend)
    try:
        _hand_over(writer, batch_of(recs[:10], 0), None)  # stale: member-b stored 5
        _hand_over(writer, batch_of(recs[10:20], 10), None)  # would pass its own check (10)
        writer.wait()
        flight, outcome = writer.take()
        assert len(flight.batch) == 10
        assert isinstance(outcome, Fenced)
        assert outcome.stored == {TP: 5}
        rest = writer.take_rest()
        assert [len(f.batch) for f in rest] == [10]
        assert isinstance(rest[0].future.exception(), Skipped)
        assert not writer.busy()
        # Both come back in order; handed over again from the stored offset, they land once.
        _hand_over(writer, batch_of(recs[5:20], 5), 5)
        _hand_over(writer, batch_of(recs[20:40], 20), None)
        assert [o.inserted for o in _outcomes(writer)] == [15, 20]
    finally:
        writer.close()
        sink.close()
    assert sql_query("SELECT COUNT(*), COUNT(DISTINCT ts, id) FROM audit_data") == [(40, 40)]
    assert sql_query("SELECT next_offset FROM audit_offsets WHERE kafka_partition = 0") == [(40,)]
