"""The archive reader on a real MariaDB: tampering with rows is named by table and row."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from auditstream.chain import Link
from auditstream.dsn import MySQLDsn
from auditstream.mysql import Connection, connect
from ops.verify import tables, verify
from ops.verify.report import NotChained
from tests.ops.verify.conftest import ROTATED, A, B, chained_records, create_archive

Archive = tuple[MySQLDsn, Connection]


def row_of(conn: Connection, table: str, seq: int) -> tuple[Any, ...]:
    cur = conn.cursor()
    cur.execute(
        f"SELECT ts, id, raw FROM `{table}` WHERE server_uuid = %s AND chain_seq = %s", (A, seq)
    )
    row = cur.fetchone()
    conn.commit()
    assert row is not None
    return tuple(row)


def test_the_untouched_archive_is_intact_across_rotated_tables_with_its_gap(
    archive: Archive,
) -> None:
    report = verify(tables.read(archive[0]))
    assert report.intact, [str(f) for f in report.findings]
    assert report.findings == []
    assert report.servers[A].links == 32 and report.servers[A].anchored_start
    assert report.servers[B].links == 5
    assert tables.event_tables(archive[1]) == [ROTATED, "audit_data"]


def test_one_changed_character_is_named_by_table_and_row(
    archive: Archive, sql_exec: Callable[..., int]
) -> None:
    ts, id_, raw = row_of(archive[1], "audit_data", 20)
    changed = raw[:40] + ("X" if raw[40] != "X" else "Y") + raw[41:]
    assert sql_exec("UPDATE audit_data SET raw = %s WHERE server_uuid = %s AND ts = %s AND id = %s",
                    changed, A, ts, id_) == 1  # fmt: skip
    report = verify(tables.read(archive[0]))
    assert not report.intact
    [f] = report.findings
    assert (f.kind, f.server_uuid, f.seq) == ("altered", A, 20)
    assert f.where == f"table audit_data row (ts={ts}, id={id_})"


def test_a_deleted_row_is_named_with_its_neighbours(
    archive: Archive, sql_exec: Callable[..., int]
) -> None:
    ts, id_, _ = row_of(archive[1], ROTATED, 5)
    assert (
        sql_exec(
            f"DELETE FROM `{ROTATED}` WHERE server_uuid = %s AND ts = %s AND id = %s", A, ts, id_
        )
        == 1
    )
    [f] = verify(tables.read(archive[0])).findings
    assert (f.kind, f.seq) == ("deleted", 6)
    assert "1 link(s) missing" in f.detail and "(seq 5..5)" in f.detail
    assert f.where.startswith(f"table {ROTATED} row")


def test_swapped_contents_of_two_rows_are_named_as_a_pair(
    archive: Archive, sql_exec: Callable[..., int]
) -> None:
    a, b = row_of(archive[1], ROTATED, 3), row_of(archive[1], "audit_data", 25)
    update = "UPDATE `{}` SET raw = %s WHERE server_uuid = %s AND ts = %s AND id = %s"
    sql_exec(update.format(ROTATED), b[2], A, a[0], a[1])
    sql_exec(update.format("audit_data"), a[2], A, b[0], b[1])
    report = verify(tables.read(archive[0]))
    [f] = report.findings
    assert (f.kind, f.seq) == ("swapped", 3)
    assert f.where == f"table {ROTATED} row (ts={a[0]}, id={a[1]})"
    assert f"table audit_data row (ts={b[0]}, id={b[1]})" in f.detail


def test_rows_that_exchanged_everything_but_their_key_are_named_as_a_pair(
    archive: Archive, sql_exec: Callable[..., int]
) -> None:
    conn = archive[1]
    cur = conn.cursor()
    cur.execute(
        "SELECT ts, id, raw, chain, chain_seq FROM audit_data WHERE server_uuid = %s AND chain_seq IN (18, 27) ORDER BY chain_seq",
        (A,),
    )
    a, b = cur.fetchall()
    conn.commit()
    update = "UPDATE audit_data SET raw = %s, chain = %s, chain_seq = %s WHERE server_uuid = %s AND ts = %s AND id = %s"
    sql_exec(update, b[2], b[3], b[4], A, a[0], a[1])
    sql_exec(update, a[2], a[3], a[4], A, b[0], b[1])
    [f] = verify(tables.read(archive[0])).findings
    assert (f.kind, f.seq) == ("swapped", 18)
    assert f.detail.startswith("content (all but the key) exchanged with seq=27")
    assert f.where == f"table audit_data row (ts={b[0]}, id={b[1]})"  # link 18 now sits in b's row


def test_a_deleted_gap_row_is_a_missing_link(
    archive: Archive, sql_exec: Callable[..., int]
) -> None:
    assert sql_exec("DELETE FROM audit_control WHERE server_uuid = %s", A) == 1
    [f] = verify(tables.read(archive[0])).findings
    assert (f.kind, f.seq) == ("deleted", 13)


def test_a_forged_row_is_named_as_inserted(archive: Archive, sql_exec: Callable[..., int]) -> None:
    ts, id_, _ = row_of(archive[1], "audit_data", 20)
    sql_exec("INSERT INTO audit_data (server_uuid, ts, id, class, event, raw, chain, chain_seq) "
             "SELECT server_uuid, ts, id + 100, class, event, raw, chain, chain_seq FROM audit_data "
             "WHERE server_uuid = %s AND ts = %s AND id = %s", A, ts, id_)  # fmt: skip
    findings = verify(tables.read(archive[0])).findings
    assert [(f.kind, f.where) for f in findings] == [
        ("inserted", f"table audit_data row (ts={ts}, id={id_ + 100})")
    ]


def test_dead_lettered_events_are_reported_as_such(
    archive: Archive, sql_exec: Callable[..., int]
) -> None:
    """The consumer dead-lettered event 7: it is missing from the tables but in the DLQ."""
    ts, id_, _ = row_of(archive[1], ROTATED, 7)
    sql_exec(f"DELETE FROM `{ROTATED}` WHERE server_uuid = %s AND ts = %s AND id = %s", A, ts, id_)
    name, record = chained_records(A)[6]
    letter = Link.from_record(name, record, "mysql.audit.dlq/0@3")
    assert letter is not None
    report = verify(tables.read(archive[0], extras=[replace(letter, dead_lettered=True)]))
    assert report.intact
    assert [(f.kind, f.seq, f.where) for f in report.findings] == [
        ("dead_lettered", 7, "mysql.audit.dlq/0@3")
    ]


def test_only_the_requested_servers_are_read(archive: Archive) -> None:
    report = verify(tables.read(archive[0], only=[B], page_rows=2))
    assert list(report.servers) == [B] and report.servers[B].links == 5 and report.intact


def test_tables_without_the_chain_column_are_a_clear_error(mysql_db: MySQLDsn) -> None:
    conn = connect(mysql_db)
    create_archive(conn, chained=False)
    conn.close()
    with pytest.raises(NotChained, match="ADD COLUMN") as err:
        list(tables.read(mysql_db))
    assert err.value.context["table"] == ROTATED and err.value.exit_code == 2
