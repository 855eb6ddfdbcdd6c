"""The bookmark store against a real MariaDB: setup, load, upsert, and failure translation."""

from __future__ import annotations

import mysql.connector
import pytest

from auditstream.chain import ChainState
from auditstream.dsn import MySQLDsn
from auditstream.errors import ArchiveError
from auditstream.position import Position
from producer.bookmark import BookmarkStore
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
    # docs/producer.md: the bookmark and its chain state, then sealing's checkpoint number and a
    # requested skip (issue 16).
    assert set(cols) == {
        "server_uuid",
        "ts",
        "id",
        "chain",
        "chain_seq",
        "updated_at",
        "checkpoint_seq",
        "pending_skip",
    }


def test_setup_upgrades_the_predecessors_table_in_place(mysql_db: MySQLDsn) -> None:
    conn = mysql.connector.connect(**mysql_db.connect_kwargs())
    cur = conn.cursor()
    cur.execute(
        "CREATE TABLE audit_config (server_uuid VARCHAR(64) PRIMARY KEY, ts TIMESTAMP, id INT)"
    )
    cur.execute("INSERT INTO audit_config VALUES ('old', '2021-01-15 14:06:33', 5)")
    conn.commit()
    conn.close()
    store = BookmarkStore(mysql_db)
    store.setup()
    assert {"chain", "chain_seq", "updated_at", "checkpoint_seq", "pending_skip"} <= set(
        columns(mysql_db)
    )
    stored = store.load_state("old")
    assert stored is not None
    assert stored.bookmark == Position("2021-01-15 14:06:33", 5)
    assert stored.chain == ChainState.start("old")  # no chain yet: continue from genesis


def test_chain_state_is_stored_with_the_bookmark(store: BookmarkStore) -> None:
    state = ChainState.start(UUID).advance_event("2024-01-01 00:00:00", 0, "{}")
    store.store(UUID, Position("2024-01-01 00:00:00", 0), state)
    stored = store.load_state(UUID)
    assert stored is not None
    assert (stored.chain.hash, stored.chain.seq) == (state.hash, 1)
    assert stored.chain.bookmark == ("2024-01-01 00:00:00", 0)


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
