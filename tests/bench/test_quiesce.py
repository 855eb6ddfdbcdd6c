"""``bench.quiesce``: the flush before each timed load, and the state it logs (real server)."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from auditstream import mysql
from auditstream.dsn import MySQLDsn
from bench import quiesce

_SETTINGS = (
    "SELECT @@GLOBAL.innodb_max_dirty_pages_pct, @@GLOBAL.innodb_io_capacity, "
    "@@GLOBAL.innodb_io_capacity_max"
)


def _settings(dsn: MySQLDsn) -> tuple[Any, ...]:
    conn = mysql.connect(dsn, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute(_SETTINGS)
        row: Any = cur.fetchall()[0]
        return tuple(row)
    finally:
        conn.close()


def test_flush_logs_the_buffer_pool_state_and_restores_the_settings(
    mysql_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    before = _settings(mysql_server.dsn)
    with caplog.at_level(logging.INFO, logger="bench.quiesce"):
        seconds = quiesce.flush_dirty_pages(mysql_server.dsn, timeout=30)
    assert seconds >= 0
    lines = [r.getMessage() for r in caplog.records if r.name == "bench.quiesce"]
    found = [
        m
        for line in lines
        if (m := re.search(r"buffer pool: (\d+) data, (\d+) free of (\d+) pages", line))
    ]
    assert found, lines
    data, free, total = (int(g) for g in found[-1].groups())
    assert 0 < data <= total and free <= total
    assert _settings(mysql_server.dsn) == before
