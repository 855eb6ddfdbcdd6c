"""The insert path: rows into a table, only primary-key duplicates skipped, bad rows isolated.

Measured here (private MariaDB on 2 busy cores, audit-shaped rows from the sample,
5000 per batch, C extension): ``LOAD DATA LOCAL INFILE`` of a file in a private temp dir wrote
13-16k rows/s, a multi-row ``INSERT ... ON DUPLICATE KEY UPDATE`` 3.3-3.9k rows/s (the connector
escapes 39 parameters per row in Python), so ``load`` is the default; the connector cannot stream
LOCAL INFILE from memory, hence the file. Trap: with ``LOCAL`` the server cannot stop the
transfer, so it behaves as if ``IGNORE`` were given and turns every row error into a warning;
``RowWriter`` therefore reads ``SHOW WARNINGS`` after every statement and treats anything
but 1062 (duplicate key) as bad content. ``insert`` needs no ``local_infile``.

Bad rows: a failing chunk is rolled back to a savepoint and split in halves until each bad row
is alone, so the good rows of the same batch still land (inside the caller's transaction).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from mysql.connector import errors as myerrors

from auditstream import mysql as db
from auditstream.errors import ArchiveContentError
from consumer.rows import load_data_line

try:  # the C extension's commit/rollback raise its raw error, not a mysql.connector.Error
    from _mysql_connector import MySQLError as RawError  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - pure Python connector
    RawError = db.Error

#: Everything the connector raises for a failed statement, commit or rollback.
DB_ERRORS: tuple[type[Exception], ...] = (db.Error, RawError)

_DUPLICATE = 1062
_DEADLOCK = 1213
_CHUNK_ROWS = 2000
#: LOAD DATA text has no packet limit: one statement per batch unless it is very large (each
#: statement costs a savepoint and a SHOW WARNINGS round trip).
_LOAD_CHUNK_ROWS = 20_000
#: Text per statement: a multi-row INSERT must stay below max_allowed_packet (64 MiB on MySQL 8),
#: or the server drops the connection and the batch would be retried forever as an outage.
_CHUNK_BYTES = 16 * 1024 * 1024

Rows = list[tuple[Any, ...]]
Method = Literal["load", "insert"]

__all__ = ["DB_ERRORS", "Method", "RawError", "RowWriter", "Rows", "chunks", "line_chunks"]


class RowWriter:
    """Writes row chunks with one statement each; owns the LOAD DATA file of this process."""

    def __init__(self, method: Method) -> None:
        self.method: Method = method
        self._file = Path(tempfile.mkdtemp(prefix="auditstream-load-")) / "batch.tsv"
        # Only this file is ever sent; but the client allows LOCAL INFILE, so a compromised
        # server could ask for others: the archive server is trusted like the data it holds.

    def close(self) -> None:
        """Remove the LOAD DATA file (idempotent)."""
        shutil.rmtree(self._file.parent, ignore_errors=True)

    def insert(
        self,
        cur: Any,
        table: str,
        columns: Sequence[str],
        rows: Rows,
        lines: Sequence[bytes] | None = None,
        *,
        data: bytes | None = None,
    ) -> tuple[int, int, dict[int, ArchiveContentError]]:
        """Insert ``rows``; return (inserted, duplicates skipped, ``{row index: error}``).

        ``data``: ``lines`` already joined (made outside the transaction); written as it is
        when one statement takes every line, the lines are then only for isolating bad rows.

        ``lines``: the rows' ``LOAD DATA`` lines, one ``load_data_line`` per row in UTF-8, built
        before the transaction (the consumer builds them while the previous batch is written);
        built here when not given. The file is their concatenation: no copy of the batch is
        encoded in the writer thread, whose time between statements leaves the server idle.

        Raises:
            mysql errors (``DB_ERRORS``) that are not about a row's content.
        """
        if self.method == "load" and table == "audit_data" and lines is None:
            lines = [load_data_line(row).encode() for row in rows]
        bad: dict[int, ArchiveContentError] = {}
        inserted = duplicates = 0
        # Ranges still to write, the next one last. A failing range is split in halves, the
        # lower half written first. (Not a recursive closure: a nested function that calls
        # itself is a reference cycle holding the batch's rows and lines until the cyclic GC
        # runs, which measured ~400 MB more peak RSS with a lazier GC.)
        if lines is not None and data is not None and _one_statement(lines, data):
            todo = [(0, len(lines))]
        else:
            data = None
            todo = list(reversed(chunks(rows) if lines is None else line_chunks(lines)))
        while todo:
            lo, hi = todo.pop()
            cur.execute("SAVEPOINT chunk")
            try:
                text: Sequence[bytes] | None
                if data is not None:  # the first statement, over every line
                    text, data = [data], None
                else:
                    text = None if lines is None else lines[lo:hi]
                done = self._statement(cur, table, columns, rows[lo:hi], text)
            except ArchiveContentError as exc:
                cur.execute("ROLLBACK TO SAVEPOINT chunk")
                if hi - lo == 1:
                    # Without its traceback: that holds this frame, which holds ``bad``, a cycle
                    # (the dead letter needs only the message).
                    bad[lo] = exc.with_traceback(None)
                else:
                    mid = (lo + hi) // 2
                    todo += [(mid, hi), (lo, mid)]
                continue
            inserted += done
            duplicates += hi - lo - done
        return inserted, duplicates, bad

    def _statement(
        self,
        cur: Any,
        table: str,
        columns: Sequence[str],
        rows: Rows,
        lines: Sequence[bytes] | None,
    ) -> int:
        """One statement for ``rows``; returns rows inserted. Raises ArchiveContentError."""
        names = ", ".join(columns)
        try:
            if self.method == "load" and table == "audit_data" and lines is not None:
                # A new file each time, removed after use: truncating the last one waits for
                # its pages' writeback (measured ~7 ms a batch on this machine's disk).
                self._file.write_bytes(b"".join(lines))
                try:
                    cur.execute(
                        f"LOAD DATA LOCAL INFILE %s INTO TABLE {table} CHARACTER SET utf8mb4 "
                        f"({names})",
                        (str(self._file),),
                    )
                finally:
                    self._file.unlink(missing_ok=True)
            else:
                marks = "(" + ", ".join(["%s"] * len(columns)) + ")"
                cur.execute(
                    f"INSERT INTO {table} ({names}) VALUES {', '.join([marks] * len(rows))} "
                    f"ON DUPLICATE KEY UPDATE {columns[0]} = {columns[0]}",
                    [v for row in rows for v in row],
                )
            inserted = int(cur.rowcount)
            warnings = cur.warning_count if hasattr(cur, "warning_count") else 0
        except DB_ERRORS as exc:
            content = isinstance(exc, myerrors.DataError | myerrors.IntegrityError)
            if content and getattr(exc, "errno", None) != _DEADLOCK:
                raise ArchiveContentError(f"row rejected: {exc}", table=table) from exc
            raise
        if warnings:
            cur.execute("SHOW WARNINGS")
            shown = cur.fetchall()
            other = [w for w in shown if int(w[1]) != _DUPLICATE]
            if other or len(shown) < warnings:
                what = other[0][2] if other else f"{warnings} warnings"
                raise ArchiveContentError(f"row rejected: {what}", table=table)
        return max(inserted, 0)


def _one_statement(lines: Sequence[bytes], data: bytes) -> bool:
    """``line_chunks(lines)`` is one range: no need to walk the lines to know it."""
    return 0 < len(lines) <= _LOAD_CHUNK_ROWS and len(data) <= _CHUNK_BYTES


def line_chunks(lines: Sequence[bytes]) -> list[tuple[int, int]]:
    """``chunks`` for rows already written as ``LOAD DATA`` lines (bounded by their length)."""
    out = []
    lo, size = 0, 0
    for i, length in enumerate(map(len, lines)):
        if i > lo and (i - lo >= _LOAD_CHUNK_ROWS or size + length > _CHUNK_BYTES):
            out.append((lo, i))
            lo, size = i, 0
        size += length
    if lo < len(lines):
        out.append((lo, len(lines)))
    return out


def chunks(rows: Rows) -> list[tuple[int, int]]:
    """``[lo, hi)`` ranges of at most ``_CHUNK_ROWS`` rows and about ``_CHUNK_BYTES`` of text."""
    out = []
    lo, size = 0, 0
    for i, row in enumerate(rows):
        length = sum(len(v) for v in row if v.__class__ is str)
        if i > lo and (i - lo >= _CHUNK_ROWS or size + length > _CHUNK_BYTES):
            out.append((lo, i))
            lo, size = i, 0
        size += length
    if lo < len(rows):
        out.append((lo, len(rows)))
    return out
