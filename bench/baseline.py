"""The predecessor's algorithm (``auditarchive.py``), ported once and reused by every benchmark.

What it does, step by step, as the predecessor did (enterprise-audit.md section 4):
1. Set the read session's ``audit_log_read_buffer_size`` to 4 MB.
2. Read the stored bookmark from ``audit_config``; with one, read from it and drop the first
   returned row (the bookmarked event, already archived); without one, read from
   ``{"start": {"timestamp": "2020-01-01"}}``.
3. For every page: ``SELECT count(*)`` of ``audit_data`` (the predecessor did, every page), then
   ``audit_log_read(...)`` (no argument after the first page).
4. Shred each event into the 34 columns and insert it **row by row**; a ``null`` ends the page.
5. Commit per page.
6. Stop at the first error of ``audit_log_read`` - on a healthy log that is error 3200, the call
   after the page that ended in ``null``; the predecessor took every error for "end of data".
7. Write the bookmark of the last inserted event once, at the end; rename ``audit_data`` to
   ``audit_data_<local YYYYmmdd_HHMMSS>`` and create a fresh one.

Deliberate differences, each one in the baseline's favour or neutral:
    * The predecessor shredded the page on the audited server with ``JSON_TABLE(AUDIT_LOG_READ())``;
      the emulator answers ``audit_log_read`` itself and cannot evaluate ``JSON_TABLE`` over it,
      so the port parses the page in the client with the same 34 paths (``orjson``; the typo
      ``$.genera_data.query`` kept, so ``query`` stays NULL) and truncates strings to the column
      widths as ``JSON_TABLE`` would.
    * Its archive session ran on the audited server; here it goes straight to the archive
      MariaDB (the pipeline's consumer does the same), not through the emulator's proxy.

Trap: this is a benchmark subject, faults included (``id INT``, ``TIMESTAMP``, stop at any
error). Never reuse it as an archiver.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from typing import Any

import orjson

from auditstream import mysql
from auditstream.dsn import MySQLDsn

BUFFER_SIZE = 4 * 1024 * 1024
_EMPTY_START = '{"start": {"timestamp": "2020-01-01"}}'

# (column, JSON path below the event, type): the predecessor's JSON_TABLE COLUMNS clause.
_Conv = Callable[[Any], Any]


def _int(value: Any) -> int | None:
    if value is None or isinstance(value, dict | list):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _varchar(width: int) -> _Conv:
    def conv(value: Any) -> str | None:
        if value is None or isinstance(value, dict | list):
            return None
        return str(value)[:width]

    return conv


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _ts(value: Any) -> str | None:
    return value if isinstance(value, str) else None


_ATTR = ("connection_data", "connection_attributes")
COLUMNS: tuple[tuple[str, tuple[str, ...], _Conv], ...] = (
    ("id", ("id",), _int),
    ("ts", ("timestamp",), _ts),
    ("class", ("class",), _varchar(20)),
    ("event", ("event",), _varchar(80)),
    ("the_account", ("account",), _json),
    ("login_ip", ("login", "ip"), _varchar(200)),
    ("login_os", ("login", "os"), _varchar(200)),
    ("login_user", ("login", "user"), _varchar(200)),
    ("login_proxy", ("login", "proxy"), _varchar(200)),
    ("connection_id", ("connection_id",), _varchar(80)),
    ("db", ("connection_data", "db"), _varchar(40)),
    ("status", ("connection_data", "status"), _int),
    ("connection_type", ("connection_data", "connection_type"), _varchar(40)),
    ("connect_os", (*_ATTR, "_os"), _varchar(40)),
    ("pid", (*_ATTR, "_pid"), _varchar(40)),
    ("_client_name", (*_ATTR, "_client_name"), _varchar(80)),
    ("_client_version", (*_ATTR, "_client_version"), _varchar(80)),
    ("program_name", (*_ATTR, "program_name"), _varchar(80)),
    ("_platform", (*_ATTR, "_platform"), _varchar(80)),
    ("command", ("general_data", "command"), _varchar(40)),
    ("sql_command", ("general_data", "sql_command"), _varchar(40)),
    ("command_status", ("general_data", "status"), _varchar(40)),
    ("query", ("genera_data", "query"), _varchar(40)),  # the predecessor's typo, kept
    ("query_status", ("general_data", "status"), _int),
    ("start_server_id", ("startup_data", "server_id"), _varchar(400)),
    ("server_os_version", ("startup_data", "os_version"), _varchar(100)),
    ("server_mysqlversion", ("startup_data", "mysql_version"), _varchar(100)),
    ("args", ("startup_data", "args"), _json),
    ("account_host", ("account", "host"), _varchar(80)),
    ("mysql_version", ("startup_data", "mysql_version"), _varchar(80)),
    ("the_os", ("startup_data", "os"), _varchar(80)),
    ("the_os_ver", ("startup_data", "os_version"), _varchar(80)),
    ("server_id", ("startup_data", "server_id"), _varchar(80)),
)
_INSERT = (
    "INSERT INTO audit_data (server_uuid, "
    + ", ".join(c for c, _, _ in COLUMNS)
    + ") VALUES ("
    + ", ".join(["%s"] * (len(COLUMNS) + 1))
    + ")"
)


def shred(server_uuid: str, event: dict[str, Any]) -> tuple[Any, ...]:
    """One event → the predecessor's 34 column values (server_uuid first)."""
    values: list[Any] = [server_uuid]
    for _, path, conv in COLUMNS:
        node: Any = event
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        values.append(conv(node))
    return tuple(values)


@dataclass
class BaselineResult:
    """What one predecessor run did."""

    rows: int
    pages: int
    page_bytes: int
    seconds: float
    read_seconds: float
    stopped_by: str
    renamed_to: str | None


def setup(archive: MySQLDsn) -> None:
    """Create the predecessor's tables in ``archive``'s database (idempotent)."""
    text = (files("bench") / "predecessor.sql").read_text(encoding="utf-8")
    conn = mysql.connect(archive, autocommit=True)
    try:
        cur = conn.cursor()
        for stmt in text.split(";\n"):
            body = "\n".join(
                ln for ln in stmt.splitlines() if not ln.strip().startswith("--")
            ).strip()
            if body:
                cur.execute(body)
        conn.commit()
    finally:
        conn.close()


def store_bookmark(archive: MySQLDsn, server_uuid: str, ts: str, ident: int) -> None:
    """Seed ``audit_config`` (the predecessor seeded it from ``audit_log_read_bookmark()``)."""
    conn = mysql.connect(archive, autocommit=True)
    try:
        conn.cursor().execute(
            "REPLACE INTO audit_config (server_uuid, ts, id) VALUES (%s, %s, %s)",
            (server_uuid, ts, ident),
        )
        conn.commit()
    finally:
        conn.close()


def run(source: MySQLDsn, archive: MySQLDsn, *, clock: Callable[[], float]) -> BaselineResult:
    """Archive everything after the stored bookmark the predecessor's way (steps above)."""
    started = clock()
    reader = mysql.connect(source, autocommit=True)
    writer = mysql.connect(archive, autocommit=False)
    rows = pages = page_bytes = 0
    read_seconds = 0.0
    stopped_by = "end"
    last: tuple[str, int] | None = None
    try:
        rcur, wcur = reader.cursor(), writer.cursor()
        # Step 1
        rcur.execute(f"SET audit_log_read_buffer_size = {BUFFER_SIZE}")
        rcur.execute("SELECT @@server_uuid")
        server_uuid = str(_one(rcur))
        # Step 2
        wcur.execute("SELECT ts, id FROM audit_config WHERE server_uuid = %s", (server_uuid,))
        stored = wcur.fetchone()
        writer.commit()
        if stored is not None:
            ts, ident = stored
            arg: str | None = orjson.dumps({"timestamp": str(ts), "id": ident}).decode()
        else:
            arg = _EMPTY_START
        drop_first = stored is not None
        while True:
            # Step 3
            wcur.execute("SELECT count(*) FROM audit_data")
            wcur.fetchall()
            t0 = clock()
            try:
                if arg is None:
                    rcur.execute("SELECT audit_log_read()")
                else:
                    rcur.execute("SELECT audit_log_read(%s)", (arg,))
                page = _one(rcur)
            except mysql.Error as exc:
                # Step 6
                stopped_by = f"error {exc.errno}"
                break
            read_seconds += clock() - t0
            arg = None
            pages += 1
            text = page.encode() if isinstance(page, str) else bytes(page)
            page_bytes += len(text)
            events = orjson.loads(text)
            # Step 4
            for i, event in enumerate(events):
                if event is None:
                    break
                if drop_first and i == 0:
                    continue
                values = shred(server_uuid, event)
                wcur.execute(_INSERT, values)
                rows += 1
                last = (values[2], values[1])
            drop_first = False
            # Step 5
            writer.commit()
        # Step 7
        renamed = None
        if last is not None:
            wcur.execute(
                "REPLACE INTO audit_config (server_uuid, ts, id) VALUES (%s, %s, %s)",
                (server_uuid, *last),
            )
            writer.commit()
            renamed = "audit_data_" + datetime.now().strftime("%Y%m%d_%H%M%S")  # noqa: DTZ005 - as the predecessor (local time)
            wcur.execute(f"RENAME TABLE audit_data TO {renamed}")
            wcur.execute("CREATE TABLE audit_data LIKE audit_data_template")
    finally:
        reader.close()
        writer.close()
    return BaselineResult(
        rows, pages, page_bytes, clock() - started, read_seconds, stopped_by, renamed
    )


def _one(cur: Any) -> Any:
    row = cur.fetchone()
    cur.fetchall()
    if row is None:
        raise RuntimeError("query returned no row")
    return row[0]
