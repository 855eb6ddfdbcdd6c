"""Fixtures for rotation and upload: an archive database with audit tables, rows, the OCI server.

* ``archive_dsn``: a fresh database (``mysql_db``) with ``audit_data_template``, ``audit_data``
  LIKE it and the ``audit_rotation`` ledger.
* ``insert_rows(dsn, n, table=..., server_uuid=..., start=...)``: realistic rows (the real sample
  events as ``raw``, awkward text: tabs, newlines, backslashes, quotes, NUL, emoji, NULLs, JSON).
* ``table_rows(dsn, table)``: every row of a table in primary-key order, for exact comparisons.
* ``oci_server``: the OCI Object Storage test server (``tests.harness.oci_server``), fresh state
  per test, bucket ``audit`` in namespace ``testns``; ``oci_config``: a config file + key for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import sql
from auditstream import mysql
from auditstream.dsn import MySQLDsn
from tests.harness.oci_server import OciTestServer, write_oci_config

SAMPLES = Path("/work/shared/samples/mysql-8.0.22-commercial-audit.log")
COLUMNS = (
    "server_uuid, ts, id, class, event, connection_id, account_user, account_host, login_user,"
    " login_ip, connection_attributes, command, sql_command, query, status, query_time,"
    " rows_sent, message_map, unix_time, raw"
)
_AWKWARD = [
    "select 1",
    "select 'a\tb'\n from t where x = \"q\" and y = '\\\\'",
    "insert into t values ('é', '😀', 'tab\there', 'cr\rlf\r\n')",
    "nul \0 byte and ^Z \x1a and backslash-N \\N",
    None,
]


def _sample_lines() -> list[str]:
    if not SAMPLES.exists():
        return ['{ "timestamp": "2020-10-19 19:21:33", "id": 0, "class": "audit" }']
    lines = [ln.rstrip(",\n") for ln in SAMPLES.read_text(encoding="utf-8").splitlines()]
    return [ln for ln in lines if ln.startswith("{")]


_RAW = _sample_lines()


def make_rows(n: int, *, server_uuid: str, start: int = 0) -> list[tuple[Any, ...]]:
    """``n`` distinct rows for ``server_uuid``; ids from ``start`` (ts advances every 10 ids)."""
    base = datetime(2026, 1, 1, tzinfo=UTC).replace(tzinfo=None)
    rows = []
    for i in range(start, start + n):
        raw = _RAW[i % len(_RAW)]
        query = _AWKWARD[i % len(_AWKWARD)]
        rows.append(
            (
                server_uuid,
                base + timedelta(seconds=i // 10),
                i,
                "general",
                "status",
                i % 97,
                "root" if i % 3 else None,
                "localhost",
                "root",
                "10.0.0.1",
                json.dumps({"_pid": str(i), "_os": "Linux"}) if i % 2 else None,
                "Query",
                "select",
                query,
                0,
                (i % 1000) / 7.0 if i % 4 else None,
                i * 3,
                json.dumps({"k": "v\t\n"}) if i % 5 == 0 else None,
                1_700_000_000 + i,
                raw,
            )
        )
    return rows


def insert_rows(
    dsn: MySQLDsn,
    n: int,
    *,
    table: str = "audit_data",
    server_uuid: str = "3b3c2d2e-0000-11ee-8000-000000000001",
    start: int = 0,
    batch: int = 500,
) -> None:
    """Insert ``n`` rows (see ``make_rows``) into ``table``."""
    conn = mysql.connect(dsn)
    try:
        cur = conn.cursor()
        rows = make_rows(n, server_uuid=server_uuid, start=start)
        marks = ", ".join(["%s"] * len(COLUMNS.split(",")))
        for i in range(0, n, batch):
            cur.executemany(
                f"INSERT INTO {table} ({COLUMNS}) VALUES ({marks})", rows[i : i + batch]
            )
            conn.commit()
    finally:
        conn.close()


def table_rows(dsn: MySQLDsn, table: str) -> list[tuple[Any, ...]]:
    """Every row of ``table`` in primary-key order."""
    conn = mysql.connect(dsn)
    try:
        cur = conn.cursor()
        cur.execute(f"SELECT * FROM `{table}` ORDER BY server_uuid, ts, id")
        return list(cur.fetchall())
    finally:
        conn.close()


def create_archive(dsn: MySQLDsn) -> None:
    """The audit tables and the ledger in ``dsn``'s database."""
    conn = mysql.connect(dsn, autocommit=True)
    try:
        cur = conn.cursor()
        for name in ("archive/audit_data_template", "archive/audit_rotation"):
            for stmt in sql.statements(name):
                cur.execute(stmt)
        cur.execute("CREATE TABLE IF NOT EXISTS audit_data LIKE audit_data_template")
    finally:
        conn.close()


@pytest.fixture
def archive_dsn(mysql_db: MySQLDsn) -> MySQLDsn:
    """A fresh archive database with audit_data_template, audit_data and audit_rotation."""
    create_archive(mysql_db)
    return mysql_db


@pytest.fixture
def rows_of() -> Callable[[MySQLDsn, str], list[tuple[Any, ...]]]:
    """``rows_of(dsn, table)``: every row of a table in primary-key order."""
    return table_rows


@pytest.fixture(scope="session")
def _oci_server_session() -> Iterator[OciTestServer]:
    server = OciTestServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def oci_server(_oci_server_session: OciTestServer) -> OciTestServer:
    """The OCI test server, emptied, with bucket ``audit`` in namespace ``testns``, no faults."""
    _oci_server_session.reset()
    _oci_server_session.create_bucket("audit")
    return _oci_server_session


@pytest.fixture(scope="session")
def oci_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An OCI config file (profile DEFAULT) with a freshly generated API key."""
    return write_oci_config(tmp_path_factory.mktemp("oci"))
