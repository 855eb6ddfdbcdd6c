"""Chained records of the real sample, and an archive database holding them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

import sql
from auditstream.chain import ChainState
from auditstream.dsn import MySQLDsn
from auditstream.mysql import Connection, connect
from schemas.mapping import to_record
from tests.schemas.test_codec import sample_events

A = "3e11fa47-71ca-11e1-9e33-c80aa9429562"
B = "7f000001-0000-11ef-8000-0000000000bb"
ROTATED = "audit_data_20260101_000000"
GAP_AFTER = 10  # a gap link follows the 11th event of server A


def chained_records(server: str, n: int = 31) -> list[tuple[str, dict[str, Any]]]:
    """``(schema name, record)`` in chain order: sample events and one gap, chained."""
    state, out = ChainState.start(server), []
    for i, raw in enumerate(sample_events()[:n]):
        event = orjson.loads(raw)
        state = state.advance_event(event["timestamp"], event["id"], raw)
        out.append(
            ("audit_event", to_record(server, raw, event, chain=state.hash, chain_seq=state.seq))
        )
        if i == GAP_AFTER:
            gap = {"server_uuid": server, "kind": "gap", "at": 0, "reason": "oversized",
                   "from_timestamp": event["timestamp"], "from_id": event["id"], "size": 5_000_000,
                   "detail": "1 event skipped"}  # fmt: skip
            state = state.advance_gap(gap)
            out.append(("control_event", state.stamp(gap)))
    return out


def chain_columns(conn: Connection, table: str, present: bool) -> None:
    """Add (as sql/archive does now) or drop (an archive from before the chain) the columns."""
    cur = conn.cursor()
    cur.execute(f"SHOW COLUMNS FROM `{table}` LIKE 'chain%'")
    have = bool(cur.fetchall())
    if present and not have:
        cur.execute(
            f"ALTER TABLE `{table}` ADD COLUMN chain CHAR(64) CHARACTER SET ascii NULL, "
            "ADD COLUMN chain_seq BIGINT UNSIGNED NULL"
        )
    elif have and not present:
        cur.execute(f"ALTER TABLE `{table}` DROP COLUMN chain, DROP COLUMN chain_seq")


def create_archive(conn: Connection, chained: bool = True) -> None:
    cur = conn.cursor()
    for name in ("archive/audit_data_template", "archive/audit_control"):
        for statement in sql.statements(name):
            cur.execute(statement)
    chain_columns(conn, "audit_data_template", chained)
    chain_columns(conn, "audit_control", chained)
    for statement in sql.statements("archive/audit_data"):
        cur.execute(statement)
    cur.execute(f"CREATE TABLE `{ROTATED}` LIKE audit_data_template")
    conn.commit()


def insert(conn: Connection, records: list[tuple[str, dict[str, Any]]], split: int = 15) -> None:
    """Events up to ``split`` into the rotated table, the rest into audit_data; gaps as rows."""
    cur = conn.cursor()
    for n, (name, r) in enumerate(records):
        if name == "audit_event":
            table = ROTATED if n < split else "audit_data"
            cur.execute(
                f"INSERT INTO `{table}` (server_uuid, ts, id, class, event, raw, chain, chain_seq)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (r["server_uuid"], r["timestamp"].replace(tzinfo=None), r["id"], r["class"],
                 r["event"], r["raw"], r["chain"], r["chain_seq"]),
            )  # fmt: skip
        else:
            cur.execute(
                "INSERT INTO audit_control (topic, kafka_partition, kafka_offset, server_uuid, kind,"
                " at, reason, from_timestamp, from_id, size, detail, chain, chain_seq)"
                " VALUES ('mysql.audit.control', 0, %s, %s, 'gap', UTC_TIMESTAMP(), %s, %s, %s,"
                " %s, %s, %s, %s)",
                (n, r["server_uuid"], r["reason"], r["from_timestamp"], r["from_id"], r["size"],
                 r["detail"], r["chain"], r["chain_seq"]),
            )  # fmt: skip
    conn.commit()


@pytest.fixture
def archive(mysql_db: MySQLDsn) -> Iterator[tuple[MySQLDsn, Connection]]:
    """An archive with the chained sample of server A (31 events, 1 gap) and 5 events of B."""
    conn = connect(mysql_db)
    create_archive(conn)
    insert(conn, chained_records(A))
    insert(conn, chained_records(B, 5))
    yield mysql_db, conn
    conn.close()


@pytest.fixture
def sql_exec(archive: tuple[MySQLDsn, Connection]) -> Callable[..., int]:
    """Run one tampering statement on the archive; returns the affected row count."""

    def run(statement: str, *params: Any) -> int:
        conn = archive[1]
        cur = conn.cursor()
        cur.execute(statement, params)
        conn.commit()
        return int(cur.rowcount)

    return run
