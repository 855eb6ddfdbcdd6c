"""Statements the emulator does not own go to a backing MySQL/MariaDB, one session per client.

Each client session gets its own backend connection, driven from its own single worker thread
(mysql-connector-python is blocking and not thread-safe), opened on first use. Results come
back as raw bytes with the backend's column types, so the client sees the backend's values
unchanged; the backend's warnings become the client's ``SHOW WARNINGS``.

Traps:
    * Every proxied statement runs as the backend DSN's account: the emulator's own accounts
      and privileges only guard what it answers itself.
    * A dead backend connection is reported to the client as the backend's error; the next
      statement opens a new one (session state such as ``autocommit=0`` is then lost, as after
      a server-side disconnect).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from auditstream import mysql
from auditstream.dsn import MySQLDsn
from auditstream.text import as_text
from emulator.errors import UdfError, Warning

log = logging.getLogger(__name__)

BINARY_CHARSET = 63


@dataclass
class Column:
    """A result column as sent to the client."""

    name: str
    type: int = 253  # VAR_STRING
    charset: int = 255  # utf8mb4_0900_ai_ci
    flags: int = 0
    length: int = 256
    decimals: int = 0


@dataclass
class Result:
    """A statement's outcome: rows (already text-encoded) or an OK with counters."""

    columns: list[Column] = field(default_factory=list)
    rows: list[list[bytes | None]] = field(default_factory=list)
    affected_rows: int = 0
    last_insert_id: int = 0
    warnings: list[Warning] = field(default_factory=list)
    in_transaction: bool = False


class Backend:
    """One client session's connection to the backing server."""

    def __init__(self, dsn: MySQLDsn | None) -> None:
        self.dsn = dsn
        self.database: str | None = None
        self._conn: Any = None
        self._pool: ThreadPoolExecutor | None = None

    async def execute(self, sql: str) -> Result:
        """Run ``sql`` on the backend.

        Raises:
            UdfError: the backend's error (errno, SQLSTATE, message), or 1105 without a backend.
        """
        if self.dsn is None:
            raise UdfError(1105, "This emulator has no --backend-dsn to run the statement on.")
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="emulator-backend")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._run, sql)

    def _run(self, sql: str) -> Result:
        try:
            if self._conn is None and self.dsn is not None:
                overrides: dict[str, Any] = {"autocommit": True, "time_zone": "+00:00"}
                if self.database:
                    overrides["database"] = self.database
                self._conn = mysql.connect(self.dsn, **overrides)
            cur = self._conn.cursor(raw=True)
            try:
                cur.execute(sql)
                result = Result()
                if cur.description:
                    result.columns = [_column(d) for d in cur.description]
                    result.rows = [
                        [None if v is None else bytes(v) for v in row] for row in cur.fetchall()
                    ]
                else:
                    result.affected_rows = max(cur.rowcount, 0)
                    result.last_insert_id = cur.lastrowid or 0
                if cur.warning_count:
                    cur.execute("SHOW WARNINGS")
                    result.warnings = [
                        Warning(as_text(lvl, "replace"), int(code), as_text(msg, "replace"))
                        for lvl, code, msg in cur.fetchall()
                    ]
                result.in_transaction = bool(self._conn.in_transaction)
                return result
            finally:
                cur.close()
        except mysql.Error as exc:
            if mysql.is_connection_error(exc):
                self._drop()
            raise UdfError(exc.errno or 1105, exc.msg or str(exc), exc.sqlstate or "HY000") from exc

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except mysql.Error:
                log.debug("closing a broken backend connection failed", exc_info=True)

    async def close(self) -> None:
        """Close the backend connection and its thread."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await asyncio.get_running_loop().run_in_executor(pool, self._drop)
            pool.shutdown(wait=False)


def _column(desc: tuple[Any, ...]) -> Column:
    name, type_code = desc[0], int(desc[1])
    flags = int(desc[7]) if len(desc) > 7 and desc[7] is not None else 0
    charset = int(desc[8]) if len(desc) > 8 and desc[8] else 255
    return Column(name=as_text(name, "replace"), type=type_code, charset=charset, flags=flags)
