"""The audit source the conformance suite runs against: the emulator (both flavors) or a real server.

Against a real MySQL Enterprise / Percona server, set:

* ``AUDIT_SOURCE_TEST_DSN``: an account with AUDIT_ADMIN whose own statements are NOT logged
  (``log_nothing``), e.g. ``mysql://audituser:pw@db:3306``;
* ``AUDIT_SOURCE_TEST_AUDITED_DSN``: an account whose statements ARE logged (``log_all``);
* ``AUDIT_SOURCE_TEST_FLAVOR``: ``oracle`` (default) or ``percona``;
* optionally ``AUDIT_SOURCE_TEST_PLAIN_DSN``: an account without AUDIT_ADMIN;
* for a Percona 8.4.10+ / 9.x component logging JSONL: ``AUDIT_SOURCE_TEST_FORMAT=JSONL``
  (runs the ``percona-jsonl`` cases; the variables are then ``audit_log_filter.*``).

By default the emulator serves three sources: Oracle 8.0, Percona 8.0 (JSON) and Percona 9.x
(the component, ``JSONL`` by default, pages re-encoded like Percona's reader).

The suite only uses SQL (events come from the audited account's statements), so it checks the
same documented behaviour on both.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from auditstream import mysql
from auditstream.dsn import MySQLDsn


@dataclass
class AuditSource:
    """How the conformance tests reach one audit source."""

    flavor: str
    admin: MySQLDsn
    audited: MySQLDsn
    plain: MySQLDsn | None
    emulated: bool
    fmt: str = "JSON"

    @property
    def component(self) -> bool:
        """Percona's JSONL exists only in its 8.4.10+ / 9.x component (``audit_log_filter.*``)."""
        return self.fmt == "JSONL"

    @property
    def format_var(self) -> str:
        if self.flavor != "percona":
            return "audit_log_format"
        return "audit_log_filter.format" if self.component else "audit_log_filter_format"

    @property
    def buffer_var(self) -> str:
        if self.flavor != "percona":
            return "audit_log_read_buffer_size"
        sep = "." if self.component else "_"
        return f"audit_log_filter{sep}read_buffer_size"

    def connect(self, dsn: MySQLDsn | None = None) -> Any:
        return mysql.connect(dsn or self.admin, autocommit=True)


@pytest.fixture(params=["oracle", "percona", "percona-jsonl"])
def audit_source(request: pytest.FixtureRequest) -> AuditSource:
    flavor, _, jsonl = str(request.param).partition("-")
    fmt = "JSONL" if jsonl else "JSON"
    given = os.environ.get("AUDIT_SOURCE_TEST_DSN")
    if given:
        real = os.environ.get("AUDIT_SOURCE_TEST_FLAVOR", "oracle")
        real_fmt = os.environ.get("AUDIT_SOURCE_TEST_FORMAT", "JSON").upper()
        if (flavor, fmt) != (real, real_fmt):
            pytest.skip(f"the real source is {real} {real_fmt}")
        plain = os.environ.get("AUDIT_SOURCE_TEST_PLAIN_DSN")
        return AuditSource(
            flavor=flavor,
            admin=MySQLDsn.parse(given),
            audited=MySQLDsn.parse(os.environ["AUDIT_SOURCE_TEST_AUDITED_DSN"]),
            plain=MySQLDsn.parse(plain) if plain else None,
            emulated=False,
            fmt=fmt,
        )
    options: dict[str, Any] = {"server_version": "9.4.0-1", "component": True} if jsonl else {}
    handle = request.getfixturevalue("emulator_factory")(flavor, **options)
    return AuditSource(
        flavor=flavor,
        admin=handle.archiver_dsn,
        audited=handle.dsn("app"),
        plain=handle.dsn("app"),
        emulated=True,
        fmt=fmt,
    )


class Reader:
    """An admin session reading pages; collects the warnings of each call."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.warnings: list[tuple[str, int, str]] = []
        self.warning_count = 0

    def call(self, arg: str | None = None) -> Any:
        cur = self.conn.cursor()
        if arg is None:
            cur.execute("SELECT audit_log_read()")
        else:
            cur.execute("SELECT audit_log_read(%s)", (arg,))
        value = cur.fetchall()[0][0]
        self.warning_count = cur.warning_count
        cur.execute("SHOW WARNINGS")
        self.warnings = [(str(a), int(b), str(c)) for a, b, c in cur.fetchall()]
        cur.close()
        return value.decode() if isinstance(value, bytes | bytearray) else value

    def page(self, arg: str | None = None) -> list[Any]:
        page = json.loads(self.call(arg))
        assert isinstance(page, list)
        return page

    def bookmark(self) -> dict[str, Any]:
        cur = self.conn.cursor()
        cur.execute("SELECT audit_log_read_bookmark()")
        value = cur.fetchall()[0][0]
        cur.close()
        return dict(json.loads(value))

    def set_buffer(self, source: AuditSource, size: int) -> None:
        cur = self.conn.cursor()
        scope = "GLOBAL" if source.flavor == "percona" else "SESSION"
        cur.execute(f"SET {scope} {source.buffer_var} = {size}")
        cur.close()

    def until_end(self, first_arg: str, limit: int = 10_000) -> list[Any]:
        """Every event from a positioned read to the trailing null."""
        events: list[Any] = []
        page = self.page(first_arg)
        for _ in range(limit):
            if page and page[-1] is None:
                return events + page[:-1]
            events += page
            page = self.page()
        raise AssertionError("no trailing null")


@pytest.fixture
def reader(audit_source: AuditSource) -> Iterator[Reader]:
    conn = audit_source.connect()
    yield Reader(conn)
    conn.close()


@pytest.fixture
def emit(audit_source: AuditSource) -> Iterator[Callable[..., str]]:
    """Run statements as the audited account: ``emit(n=1, size=0) -> marker`` in their text."""
    conn = audit_source.connect(audit_source.audited)

    def run(n: int = 1, size: int = 0) -> str:
        marker = "m" + uuid.uuid4().hex[:12]
        cur = conn.cursor()
        for i in range(n):
            cur.execute(f"SELECT '{marker}-{i}-{'x' * size}' AS v")
            cur.fetchall()
        cur.close()
        return marker

    yield run
    conn.close()


def wait_for_marker(
    reader: Reader, start: dict[str, Any], marker: str, count: int = 1
) -> list[Any]:
    """Events (from ``start`` on) whose query carries ``marker``; waits for async writes."""
    deadline = time.monotonic() + 10
    while True:
        events = reader.until_end(json.dumps(start))
        found = [e for e in events if marker in json.dumps(e.get("general_data", {}))]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.2)
