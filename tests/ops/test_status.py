"""``auditstream status`` on a real archive database: what it prints is what the tables hold."""

from __future__ import annotations

import json

import pytest

import sql
from auditstream import mysql as db
from auditstream.dsn import MySQLDsn
from ops.cli import main as cli
from ops.status import collect

UUID = "6c1f8b5e-0d1c-11ef-9f1a-0242ac120002"


@pytest.fixture
def archive(mysql_db: MySQLDsn) -> MySQLDsn:
    conn = db.connect(mysql_db)
    try:
        cur = conn.cursor()
        for name in (
            "audit_config",
            "audit_high_water",
            "audit_offsets",
            "audit_control",
            "audit_rotation",
        ):
            for statement in sql.statements(f"archive/{name}"):
                cur.execute(statement)
        cur.execute(
            "INSERT INTO audit_config (server_uuid, ts, id, updated_at) VALUES (%s, '2024-01-01 10:00:00', 7, UTC_TIMESTAMP(6))",
            (UUID,),
        )
        cur.execute(
            "INSERT INTO audit_high_water (server_uuid, ts, id, topic, kafka_partition, kafka_offset, updated_at) VALUES (%s, '2024-01-01 09:59:59', 3, 'mysql.audit.events', 2, 41, UTC_TIMESTAMP(6))",
            (UUID,),
        )
        cur.executemany(
            "INSERT INTO audit_offsets (topic, kafka_partition, next_offset, member, updated_at) VALUES ('mysql.audit.events', %s, %s, 'm1', UTC_TIMESTAMP(6))",
            [(0, None), (2, 42)],
        )
        cur.execute(
            "INSERT INTO audit_control (topic, kafka_partition, kafka_offset, server_uuid, kind, at, reason) "
            "VALUES ('mysql.audit.control', 0, 5, %s, 'gap', UTC_TIMESTAMP(3), 'oversized')",
            (UUID,),
        )
        cur.execute(
            "INSERT INTO audit_control (topic, kafka_partition, kafka_offset, server_uuid, kind, at, lag_seconds) "
            "VALUES ('mysql.audit.control', 0, 6, %s, 'heartbeat', '2024-01-01 10:00:05', 12.5)",
            (UUID,),
        )
        cur.execute(
            "INSERT INTO audit_rotation (table_name, state, stuck, rotated_at, row_count, last_error, updated_at) VALUES "
            "('audit_data_20240101_000000', 'verified', 0, '2024-01-01 00:00:00', 10, NULL, UTC_TIMESTAMP(6)),"
            "('audit_data_20240102_000000', 'dumped', 1, '2024-01-02 00:00:00', 5, 'checksum mismatch', UTC_TIMESTAMP(6))"
        )
        conn.commit()
    finally:
        conn.close()
    return mysql_db


def test_collect_reports_servers_partitions_and_rotations(archive: MySQLDsn) -> None:
    report = collect(archive, archive, None, None, "mysql.audit.events")
    server = report["servers"][UUID]
    assert server["bookmark"]["id"] == 7
    assert server["archived_up_to"]["id"] == 3
    assert server["gaps"] == 1
    assert server["last_heartbeat"]["lag_seconds"] == 12.5
    assert report["partitions"] == [
        {"topic": "mysql.audit.events", "partition": 0, "archived_next_offset": None},
        {"topic": "mysql.audit.events", "partition": 2, "archived_next_offset": 42},
    ]
    rotation = report["rotation"]
    assert rotation["by_state"] == {"verified": 1, "dumped": 1}
    assert rotation["pending"] == ["audit_data_20240102_000000"]
    assert rotation["stuck"] == [
        {"table": "audit_data_20240102_000000", "error": "checksum mismatch"}
    ]


def test_status_command_prints_json_and_tables(
    archive: MySQLDsn, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["status", f"--archive-dsn={archive}", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["servers"][UUID]["bookmark"]["id"] == 7
    assert cli(["status", f"--archive-dsn={archive}"]) == 0
    out = capsys.readouterr().out
    assert UUID in out and "pending uploads 1" in out and "checksum mismatch" in out


def test_status_on_an_empty_database_says_nothing_is_set_up(mysql_db: MySQLDsn) -> None:
    report = collect(mysql_db, mysql_db, None, None, "mysql.audit.events")
    assert report == {
        "servers": {},
        "partitions": [],
        "rotation": {
            "by_state": {}, "last_rotated_at": None, "pending": [], "stuck": [],
            "live_period_start": None,
        },
    }  # fmt: skip


def test_status_with_an_unreachable_archive_is_a_clear_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli(["status", "--archive-dsn=mysql://nobody@127.0.0.1:1/audit_archive"]) == 3
    assert "cannot connect" in capsys.readouterr().err


def test_status_shows_the_last_checkpoint_and_the_live_rotation_period(
    archive: MySQLDsn, capsys: pytest.CaptureFixture[str]
) -> None:
    conn = db.connect(archive)
    try:
        cur = conn.cursor()
        cur.execute(
            "INSERT INTO audit_control (topic, kafka_partition, kafka_offset, server_uuid, kind, at,"
            " checkpoint_seq, signed_seq, key_id) VALUES "
            "('mysql.audit.control', 0, 7, %s, 'checkpoint', '2024-01-01 10:00:06', 1, 40, 'aa'),"
            "('mysql.audit.control', 0, 8, %s, 'checkpoint', '2024-01-01 10:00:07', 2, 90, 'bb'),"
            "('mysql.audit.control', 0, 9, %s, 'checkpoint', '2024-01-01 10:00:08', 2, 90, 'bb')",
            (UUID, UUID, UUID),
        )  # the last one re-sent after a crash: the same checkpoint at a new offset
        for statement in sql.statements("archive/audit_rotation"):
            cur.execute(statement)  # the file holds audit_rotation_period too
        cur.execute(
            "INSERT INTO audit_rotation_period (id, period_start, updated_at) "
            "VALUES (1, '2024-01-03 00:00:00', UTC_TIMESTAMP(6))"
        )
        conn.commit()
    finally:
        conn.close()
    report = collect(archive, archive, None, None, "mysql.audit.events")
    checkpoint = report["servers"][UUID]["last_checkpoint"]
    assert (checkpoint["checkpoint_seq"], checkpoint["signed_seq"], checkpoint["key_id"]) == (
        2, 90, "bb",
    )  # fmt: skip
    assert str(report["rotation"]["live_period_start"]) == "2024-01-03 00:00:00"
    assert cli(["status", f"--archive-dsn={archive}"]) == 0
    out = " ".join(capsys.readouterr().out.split())  # rich wraps at the test's 80 columns
    assert "live audit_data since 2024-01-03 00:00:00" in out and "#2" in out
