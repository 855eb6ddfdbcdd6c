"""The rotation ledger on mariadbd: conditional transitions, backoff, stuck rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from auditstream import mysql
from auditstream.dsn import MySQLDsn
from auditstream.errors import ChecksumMismatch, ObjectStoreError
from consumer.ledger import Ledger

T0 = datetime(2026, 2, 1, 12, tzinfo=UTC)
A, B = "audit_data_20260201_120000", "audit_data_20260201_130000"


def ledger(dsn: MySQLDsn) -> Ledger:
    led = Ledger(
        mysql.connect(dsn), backoff=timedelta(seconds=10), max_backoff=timedelta(minutes=1)
    )
    led.ensure()  # idempotent: the fixture already created the table
    return led


def test_transitions_are_conditional_and_stamped(archive_dsn: MySQLDsn) -> None:
    led = ledger(archive_dsn)
    led.record_rotated(A, T0, T0)
    led.record_rotated(A, T0 + timedelta(hours=5), T0)  # a replay changes nothing
    assert led.get(A).rotated_at == T0  # type: ignore[union-attr]
    objects = [{"name": "manifest.json", "size": 10, "sha256": "ab" * 32}]
    assert led.advance(
        A, "rotated", "dumped", T0, row_count=5, objects=objects, bookmarks={"s": {"rows": 5}}
    )
    # the same step again (two processes, a replay) moves nothing
    assert not led.advance(A, "rotated", "dumped", T0, row_count=99)
    entry = led.get(A)
    assert entry is not None and entry.state == "dumped" and entry.row_count == 5
    assert entry.objects == objects and entry.bookmarks == {"s": {"rows": 5}}
    assert led.get("audit_data_20000101_000000") is None
    led.close()


def test_failures_back_off_exponentially_and_stuck_rows_wait(archive_dsn: MySQLDsn) -> None:
    led = ledger(archive_dsn)
    led.record_rotated(A, T0, T0)
    led.record_rotated(B, T0 + timedelta(hours=1), T0)
    assert [e.table for e in led.pending(T0)] == [A, B]

    err = ObjectStoreError("upload failed: 503", object="x")
    delays = []
    for _ in range(5):
        led.fail(A, err, T0, retriable=True)
        entry = led.get(A)
        assert entry is not None and entry.next_attempt_at is not None
        delays.append(entry.next_attempt_at - T0)
    assert delays == [timedelta(seconds=s) for s in (10, 20, 40, 60, 60)]
    assert entry.attempts == 5 and entry.last_error == "upload failed: 503 [object=x]"
    assert [e.table for e in led.pending(T0)] == [B]
    assert [e.table for e in led.pending(T0 + timedelta(minutes=1))] == [A, B]

    led.fail(B, ChecksumMismatch("differs"), T0, retriable=False)
    assert [e.table for e in led.pending(T0 + timedelta(days=1))] == [A]
    assert led.unstick(B, T0) == 1
    assert [e.table for e in led.pending(T0 + timedelta(minutes=1))] == [A, B]
    # success clears the error and the schedule
    assert led.advance(A, "rotated", "dumped", T0)
    entry = led.get(A)
    assert entry is not None and (entry.attempts, entry.last_error, entry.next_attempt_at) == (
        0,
        None,
        None,
    )
    assert led.last_rotated_at() == T0 + timedelta(hours=1)
    assert led.names() == {A, B}
    led.close()
