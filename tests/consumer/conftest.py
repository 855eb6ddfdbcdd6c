"""Fixtures of the consumer tests: an archive schema on the real MariaDB, records from the sample.

Test data are the real sample events (``/work/shared/samples``) with their ``timestamp`` and
``id`` rewritten in the text, so every generated event keeps the server's exact spacing and keys.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from auditstream import mysql as db
from auditstream.dsn import MySQLDsn
from consumer.loop import ConsumerLoop
from consumer.setup import setup
from schemas.mapping import format_timestamp, to_record

SAMPLE = (
    Path(__file__).resolve().parents[3] / "shared" / "samples" / "mysql-8.0.22-commercial-audit.log"
)
_IDENTITY = re.compile(r'"timestamp": "[^"]*", "id": \d+')
START = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)

RecordFactory = Callable[..., list[dict[str, Any]]]


def sample_lines() -> list[str]:
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    return [line.rstrip().removesuffix(",") for line in lines if line.strip()]


def event_record(server: str, ts: datetime, ident: int, n: int = 0) -> dict[str, Any]:
    """The n-th sample event (cyclic) re-stamped as ``(ts, ident)`` on ``server``."""
    lines = sample_lines()
    raw = _IDENTITY.sub(
        f'"timestamp": "{format_timestamp(ts)}", "id": {ident}', lines[n % len(lines)], count=1
    )
    return to_record(server, raw, orjson.loads(raw))


@pytest.fixture
def records() -> RecordFactory:
    """``records(server, count, start=START, per_second=10)``: events in log order.

    Ids count within each second (Oracle's rule), ``per_second`` events per second.
    """

    def make(
        server: str, count: int, start: datetime = START, per_second: int = 10, first: int = 0
    ) -> list[dict[str, Any]]:
        out = []
        for k in range(first, first + count):
            ts = start + timedelta(seconds=k // per_second)
            out.append(event_record(server, ts, k % per_second, k))
        return out

    return make


@pytest.fixture
def archive(mysql_db: MySQLDsn) -> MySQLDsn:
    """A fresh database with the archive schema applied by ``consumer setup``."""
    setup(mysql_db)
    return mysql_db


def query(dsn: MySQLDsn, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement on its own connection and return its rows (committed)."""
    conn = db.connect(dsn, autocommit=True)
    try:
        cur: Any = conn.cursor()
        cur.execute(statement, params)
        return list(cur.fetchall()) if cur.with_rows else []
    finally:
        conn.close()


@pytest.fixture
def sql_query(archive: MySQLDsn) -> Iterator[Callable[..., list[tuple[Any, ...]]]]:
    yield lambda statement, *params: query(archive, statement, tuple(params))


@pytest.fixture
def names(unique_name: Callable[[str], str]) -> dict[str, str]:
    """Fresh topic, control topic, DLQ topic and group names for one test."""
    return {k: unique_name(k) for k in ("topic", "control", "dlq", "group")}


@contextmanager
def writes_held(archive: MySQLDsn, servers: Sequence[str], topic: str) -> Iterator[Any]:
    """Another session locks ``servers``' high-water marks: the consumer's transactions wait
    (at step 2 of ``Sink.write``) until the yielded connection rolls back."""
    for server in servers:
        query(
            archive,
            "INSERT INTO audit_high_water "
            "(server_uuid, ts, id, topic, kafka_partition, kafka_offset, updated_at) "
            "VALUES (%s, '2000-01-01 00:00:00', 0, %s, 0, 0, NOW())",
            (server, topic),
        )
    conn = db.connect(archive)
    try:
        cur: Any = conn.cursor()
        cur.execute("START TRANSACTION")
        marks = ", ".join(["%s"] * len(servers))
        cur.execute(
            f"SELECT * FROM audit_high_water WHERE server_uuid IN ({marks}) FOR UPDATE",
            tuple(servers),
        )
        cur.fetchall()
        yield conn
    finally:
        conn.close()


@contextmanager
def running(loop: ConsumerLoop) -> Iterator[threading.Thread]:
    """``loop.run()`` in a thread; stopped, joined and its sink closed on exit."""
    runner = threading.Thread(target=loop.run)
    runner.start()
    try:
        yield runner
    finally:
        loop.stop()
        runner.join(60)
        loop.sink.close()
    assert not runner.is_alive()


def in_function(thread: threading.Thread, name: str) -> bool:
    """True while ``thread`` runs a function called ``name`` (somewhere on its stack)."""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code.co_name == name:
            return True
        frame = frame.f_back
    return False


def wait_until(cond: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")
