"""The consumer's periodic rotation task (``consumer.rotationtask``), as the loop runs it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from auditstream import mysql
from auditstream.dsn import MySQLDsn
from auditstream.errors import ConfigError
from consumer.archiver import Archiver
from consumer.opsconfig import UploadSettings
from consumer.rotation import Schedule
from consumer.rotationtask import RotationTask, build_rotation_task
from consumer.targets import FileStore, TargetUrl
from tests.consumer.test_ops import states
from tests.harness.oci_fixtures import COLUMNS, insert_rows, make_rows, table_rows


def test_periodic_task_rotates_on_schedule_while_inserts_flow(
    archive_dsn: MySQLDsn, tmp_path: Path
) -> None:
    stop = threading.Event()
    inserted = 0
    errors: list[BaseException] = []

    def insert() -> None:
        nonlocal inserted
        conn = mysql.connect(archive_dsn)
        marks = ", ".join(["%s"] * len(COLUMNS.split(",")))
        try:
            while not stop.is_set():
                rows = make_rows(10, server_uuid="srv-loop", start=inserted)
                conn.cursor().executemany(
                    f"INSERT INTO audit_data ({COLUMNS}) VALUES ({marks})", rows
                )
                conn.commit()
                inserted += len(rows)
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    target = TargetUrl.parse(f"file://{tmp_path}/dumps")
    archiver = Archiver(archive_dsn, FileStore(tmp_path / "dumps"), target, tmp_path / "staging")
    task = RotationTask(
        archive_dsn, Schedule(interval=timedelta(hours=1)), archiver, every=timedelta(minutes=1)
    )
    thread = threading.Thread(target=insert)
    thread.start()
    try:
        hour = datetime(2026, 1, 1, 1, 0, 1, tzinfo=UTC)  # rows start at 2026-01-01 00:00
        task.tick(hour - timedelta(minutes=30))  # the first look records the 00:00 period
        for i in range(3):
            while inserted < 100 * (i + 1) and not errors:
                stop.wait(0.01)
            task.tick(hour + timedelta(hours=i))
            task.tick(hour + timedelta(hours=i, seconds=30))  # not yet time to check again
            task.close(60)
    finally:
        stop.set()
        thread.join()
    assert errors == []
    task.tick(hour + timedelta(hours=2, minutes=30))  # mid-hour: no rotation, but uploads
    task.close(60)
    rotated = states(archive_dsn)
    assert list(rotated) == [f"audit_data_20260101_0{h}0001" for h in (1, 2, 3)]
    assert set(rotated.values()) == {"verified"}
    ids = [r[2] for t in [*rotated, "audit_data"] for r in table_rows(archive_dsn, t)]
    assert sorted(ids) == list(range(inserted))
    for t in rotated:
        assert (tmp_path / "dumps" / t / "manifest.json").exists()


def test_build_rotation_task_from_settings(archive_dsn: MySQLDsn, tmp_path: Path) -> None:
    upload = UploadSettings(
        archive_dsn=archive_dsn.url(reveal=True),
        target=f"file://{tmp_path}/dumps",
        staging_dir=tmp_path / "staging",
        method="export",
    )
    task = build_rotation_task(archive_dsn, interval="1d", upload=upload)
    insert_rows(archive_dsn, 20)
    task.tick(datetime(2026, 1, 1, 12, tzinfo=UTC))  # the first look records 2026-01-01
    assert states(archive_dsn) == {}
    task.tick(datetime(2026, 1, 2, 0, 0, 3, tzinfo=UTC))  # the next UTC midnight
    task.close(60)
    assert states(archive_dsn) == {"audit_data_20260102_000003": "verified"}
    assert (tmp_path / "dumps/audit_data_20260102_000003/audit_data_20260102_000003.csv").exists()
    with pytest.raises(ConfigError):
        build_rotation_task(archive_dsn, interval="daily")
