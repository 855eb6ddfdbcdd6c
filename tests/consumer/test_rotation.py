"""Rotation on the private mariadbd: schedule, thresholds, lock, unique names, inserts flowing."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from auditstream import mysql
from auditstream.dsn import MySQLDsn
from auditstream.errors import ConfigError
from consumer.ledger import Ledger
from consumer.rotation import Rotator, Schedule, parse_interval
from tests.harness.oci_fixtures import insert_rows, make_rows, table_rows

HOURLY = Schedule(interval=timedelta(hours=1))
DAILY = Schedule(interval=timedelta(days=1))


def at(hh: int, mm: int = 0, ss: int = 0, day: int = 1) -> datetime:
    return datetime(2026, 1, day, hh, mm, ss, tzinfo=UTC)


def rotator(dsn: MySQLDsn, schedule: Schedule = HOURLY) -> tuple[Rotator, Ledger]:
    ledger = Ledger(mysql.connect(dsn))
    return Rotator(mysql.connect(dsn), ledger, schedule), ledger


def tables(dsn: MySQLDsn) -> list[str]:
    conn = mysql.connect(dsn)
    cur = conn.cursor()
    cur.execute("SHOW TABLES")
    names = sorted(str(r[0]) for r in cur.fetchall())
    conn.close()
    return names


def test_interval_parsing_and_utc_alignment() -> None:
    assert parse_interval("1h") == timedelta(hours=1)
    assert parse_interval("1d") == timedelta(days=1)
    assert parse_interval("15m") == timedelta(minutes=15)
    for bad in ("", "0h", "1y", "h", "-1h"):
        with pytest.raises(ConfigError):
            parse_interval(bad)
    assert DAILY.period_start(at(17, 42, 3, day=5)) == at(0, day=5)
    assert HOURLY.period_start(at(17, 42, 3)) == at(17)


def test_rotates_on_utc_boundary_idle_or_not_and_never_empty(archive_dsn: MySQLDsn) -> None:
    rot, ledger = rotator(archive_dsn)
    insert_rows(archive_dsn, 30)  # ts from 2026-01-01 00:00:00
    assert rot.rotate(at(0, 59, 59)) is None  # the first look records the 00:00 period
    assert rot.rotate(at(1, 0, 5)) == "audit_data_20260101_010005"
    assert table_rows(archive_dsn, "audit_data") == []
    assert len(table_rows(archive_dsn, "audit_data_20260101_010005")) == 30
    entry = ledger.get("audit_data_20260101_010005")
    assert entry is not None and entry.state == "rotated" and entry.rotated_at == at(1, 0, 5)

    insert_rows(archive_dsn, 5, start=100)
    assert rot.rotate(at(1, 59, 59)) is None
    # idle: nothing inserted since, still rotates when the hour turns
    assert rot.rotate(at(2, 0, 1)) == "audit_data_20260101_020001"
    # empty: not rotated on schedule, only when forced
    assert rot.rotate(at(3, 0, 1)) is None
    assert rot.rotate(at(3, 0, 2), force=True) == "audit_data_20260101_030002"
    assert [e.table for e in ledger.all()] == [
        "audit_data_20260101_010005",
        "audit_data_20260101_020001",
        "audit_data_20260101_030002",
    ]


def test_backfilled_old_events_wait_for_the_next_wall_clock_boundary(
    archive_dsn: MySQLDsn,
) -> None:
    """Events three weeks old do not make a daily schedule rotate at once: the wall clock does."""
    rot, ledger = rotator(archive_dsn, DAILY)
    insert_rows(archive_dsn, 30)  # ts 2026-01-01: a backfill, archived on the 20th
    assert rot.rotate(at(10, day=20)) is None
    assert ledger.period() == at(0, day=20)  # the first look records the current period
    assert ledger.names() == set()
    # another member (or a restart) reads the same record
    other, _ = rotator(archive_dsn, DAILY)
    assert other.rotate(at(23, 59, 59, day=20)) is None
    assert other.rotate(at(0, 0, 1, day=21)) == "audit_data_20260121_000001"
    assert ledger.period() == at(0, day=21)
    # a boundary passed while empty: the empty table belongs to the new period
    assert rot.rotate(at(0, 0, 1, day=22)) is None
    assert ledger.period() == at(0, day=22)
    insert_rows(archive_dsn, 5, start=100)
    assert rot.rotate(at(10, day=22)) is None
    assert rot.rotate(at(0, 0, 3, day=23)) == "audit_data_20260123_000003"
    # a forced rotation starts the current period afresh too
    insert_rows(archive_dsn, 5, start=200)
    assert rot.rotate(at(0, 0, 1, day=25), force=True) == "audit_data_20260125_000001"
    assert ledger.period() == at(0, day=25)


def test_row_threshold(archive_dsn: MySQLDsn) -> None:
    rot, _ = rotator(archive_dsn, Schedule(max_rows=100))
    insert_rows(archive_dsn, 99)
    assert rot.due(at(5)) is None
    insert_rows(archive_dsn, 1, start=99)
    assert rot.due(at(5)) == "rows"
    assert rot.rotate(at(5)) == "audit_data_20260101_050000"


def test_names_unique_within_one_second_even_after_drop(archive_dsn: MySQLDsn) -> None:
    rot, _ = rotator(archive_dsn)
    now = at(9, 30, 0)
    names = [rot.rotate(now, force=True) for _ in range(3)]
    assert names == [
        "audit_data_20260101_093000",
        "audit_data_20260101_093000_1",
        "audit_data_20260101_093000_2",
    ]
    conn = mysql.connect(archive_dsn, autocommit=True)
    conn.cursor().execute("DROP TABLE audit_data_20260101_093000_2")
    conn.close()
    # the ledger remembers the dropped name: its objects may already exist in the store
    assert rot.rotate(now, force=True) == "audit_data_20260101_093000_3"


def test_two_rotators_racing_only_one_acts(archive_dsn: MySQLDsn) -> None:
    insert_rows(archive_dsn, 10)
    rotators = [rotator(archive_dsn)[0] for _ in range(4)]
    assert rotators[0].rotate(at(3, 30)) is None  # records the 03:00 period
    barrier = threading.Barrier(len(rotators))
    results: list[str | None] = []

    def run(rot: Rotator) -> None:
        barrier.wait()
        results.append(rot.rotate(at(4, 0, 0)))

    threads = [threading.Thread(target=run, args=(r,)) for r in rotators]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r for r in results if r] == ["audit_data_20260101_040000"]
    assert results.count(None) == 3
    assert [t for t in tables(archive_dsn) if t.startswith("audit_data_2")] == [
        "audit_data_20260101_040000"
    ]


def test_orphan_rotated_table_is_adopted(archive_dsn: MySQLDsn) -> None:
    conn = mysql.connect(archive_dsn, autocommit=True)
    conn.cursor().execute("CREATE TABLE audit_data_20251231_230000 LIKE audit_data_template")
    conn.close()
    rot, ledger = rotator(archive_dsn)
    assert rot.rotate(at(10)) is None  # empty audit_data, nothing due
    entry = ledger.get("audit_data_20251231_230000")
    assert entry is not None and entry.state == "rotated"
    assert entry.rotated_at == datetime(2025, 12, 31, 23, tzinfo=UTC)


def test_inserts_keep_flowing_no_row_lost_or_duplicated(archive_dsn: MySQLDsn) -> None:
    stop = threading.Event()
    inserted = 0
    errors: list[BaseException] = []

    def insert() -> None:
        nonlocal inserted
        conn = mysql.connect(archive_dsn)
        cur = conn.cursor()
        from tests.harness.oci_fixtures import COLUMNS

        marks = ", ".join(["%s"] * len(COLUMNS.split(",")))
        try:
            while not stop.is_set():
                rows = make_rows(20, server_uuid="u-flow", start=inserted)
                cur.executemany(f"INSERT INTO audit_data ({COLUMNS}) VALUES ({marks})", rows)
                conn.commit()
                inserted += len(rows)
        except BaseException as exc:  # the test asserts there were none
            errors.append(exc)
        finally:
            conn.close()

    rot, ledger = rotator(archive_dsn)
    thread = threading.Thread(target=insert)
    thread.start()
    try:
        rotated = []
        base = at(12)
        for i in range(5):
            while inserted < 200 * (i + 1) and not errors:
                stop.wait(0.01)
            name = rot.rotate(base + timedelta(seconds=i), force=True)
            rotated.append(name)
    finally:
        stop.set()
        thread.join()
    assert errors == []
    assert all(rotated) and len(set(rotated)) == 5
    ids = []
    for table in [*rotated, "audit_data"]:
        ids += [row[2] for row in table_rows(archive_dsn, str(table))]
    assert sorted(ids) == list(range(inserted))
    assert [e.table for e in ledger.all()] == rotated


def test_leftover_new_table_from_a_crash_is_replaced(archive_dsn: MySQLDsn) -> None:
    conn = mysql.connect(archive_dsn, autocommit=True)
    conn.cursor().execute("CREATE TABLE audit_data_new (x INT)")  # crash between CREATE and RENAME
    conn.close()
    insert_rows(archive_dsn, 3)
    rot, _ = rotator(archive_dsn)
    assert rot.rotate(at(6), force=True) == "audit_data_20260101_060000"
    insert_rows(archive_dsn, 2, start=10)  # audit_data is a proper audit table again
    assert len(table_rows(archive_dsn, "audit_data")) == 2
    assert "audit_data_new" not in tables(archive_dsn)


def test_rename_gives_up_instead_of_stalling_inserts_behind_a_long_transaction(
    archive_dsn: MySQLDsn,
) -> None:
    from auditstream.errors import ArchiveError

    insert_rows(archive_dsn, 3)
    holder = mysql.connect(archive_dsn)
    holder.cursor().execute(
        "INSERT INTO audit_data (server_uuid, ts, id, class, event, raw)"
        " VALUES ('s', '2026-01-01 00:00:00', 99, 'c', 'e', '{}')"
    )
    ledger = Ledger(mysql.connect(archive_dsn))
    rot = Rotator(mysql.connect(archive_dsn), ledger, HOURLY, lock_wait_timeout=1)
    with pytest.raises(ArchiveError) as info:
        rot.rotate(at(7), force=True)
    assert info.value.retriable
    assert ledger.all() == []
    holder.commit()
    holder.close()
    assert len(table_rows(archive_dsn, "audit_data")) == 4  # nothing moved, nothing lost
    assert rot.rotate(at(7, 0, 1), force=True) == "audit_data_20260101_070001"
