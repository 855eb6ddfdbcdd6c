"""The bookmark store against a real MariaDB: setup, load, upsert, and failure translation."""

from __future__ import annotations

import mysql.connector
import pytest

from auditstream.dsn import MySQLDsn
from auditstream.errors import ArchiveError
from producer.bookmark import BookmarkStore
from producer.page import Position
from tests.producer.conftest import UUID


def columns(dsn: MySQLDsn) -> dict[str, str]:
    conn = mysql.connector.connect(**dsn.connect_kwargs())
    try:
        cur = conn.cursor()
        cur.execute(
            "SELECT column_name, column_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'audit_config'",
            (dsn.database,),
        )
        return {str(n).lower(): str(t).lower() for n, t in cur.fetchall()}
    finally:
        conn.close()


def test_setup_is_idempotent_and_creates_the_documented_table(mysql_db: MySQLDsn) -> None:
    store = BookmarkStore(mysql_db)
    store.setup()
    store.setup()
    cols = columns(mysql_db)
    assert cols["ts"] == "datetime"
    assert cols["id"] == "bigint(20) unsigned" or cols["id"] == "bigint unsigned"
    assert set(cols) == {"server_uuid", "ts", "id", "updated_at"}


def test_load_store_upsert_round_trip(store: BookmarkStore, mysql_db: MySQLDsn) -> None:
    assert store.load(UUID) is None
    store.store(UUID, Position("2020-10-19 19:25:51", 1))
    assert store.load(UUID) == Position("2020-10-19 19:25:51", 1)
    big = Position("2038-01-19 03:14:08", 2**64 - 1)  # past TIMESTAMP's range, full unsigned id
    store.store(UUID, big)
    assert store.load(UUID) == big
    store.store("other", Position("2024-01-01 00:00:00", 0))
    assert store.load(UUID) == big
    # Another session (a restarted producer) sees the committed bookmark.
    assert BookmarkStore(mysql_db).load(UUID) == big


def test_dst_and_session_time_zone_do_not_shift_the_stored_time(
    store: BookmarkStore, mysql_db: MySQLDsn
) -> None:
    pos = Position("2024-03-31 01:30:00", 7)  # inside the EU DST switch hour
    store.store(UUID, pos)
    conn = mysql.connector.connect(**mysql_db.connect_kwargs())
    cur = conn.cursor()
    cur.execute("SET time_zone = '+05:00'")
    cur.execute("SELECT CAST(ts AS CHAR) FROM audit_config WHERE server_uuid = %s", (UUID,))
    assert cur.fetchall() == [("2024-03-31 01:30:00",)]
    conn.close()


def test_missing_table_and_unreachable_server_are_archive_errors(mysql_db: MySQLDsn) -> None:
    store = BookmarkStore(mysql_db)  # no setup
    with pytest.raises(ArchiveError, match="cannot read the bookmark"):
        store.load(UUID)
    dead = BookmarkStore(MySQLDsn(user="root", host="127.0.0.1", port=1, database="x"))
    with pytest.raises(ArchiveError, match="cannot store") as info:
        dead.store(UUID, Position("2024-01-01 00:00:00", 0))
    assert info.value.retriable
    assert info.value.context["bookmark"] == "2024-01-01 00:00:00#0"
