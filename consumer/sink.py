"""The archive writer: one batch and its offsets in ONE transaction (design.md, consumer step 3).

``Sink.write`` runs, inside a single transaction:

1. Lock the partitions' offset rows and compare them with what this member read from
   (compare-and-set): a member that lost a partition can never overwrite newer offsets.
2. Lock the servers' high-water marks; drop re-sent events already archived, even in a rotated
   table (``consumer.highwater``).
3. Insert the audit rows and the control rows. Only primary-key duplicates are skipped; any other
   error or warning for a row is bad content: the failing chunk is rolled back to a savepoint and
   split in halves until the bad rows are isolated, so the good ones still land.
4. Raise the marks, store the next offsets, hand the dead letters to the DLQ (which must be
   acknowledged), and commit.

A crash anywhere before the commit leaves nothing behind: the batch is replayed from the offsets
of the last committed transaction.

Insert path, measured here (private MariaDB on 2 busy cores, audit-shaped rows from the sample,
5000 per batch, C extension): ``LOAD DATA LOCAL INFILE`` of a file in a private temp dir wrote
13-16k rows/s, a multi-row ``INSERT ... ON DUPLICATE KEY UPDATE`` 3.3-3.9k rows/s (the connector
escapes 39 parameters per row in Python), so ``load`` is the default; the connector cannot stream
LOCAL INFILE from memory, hence the file. Trap: with ``LOCAL`` the server cannot stop the
transfer, so it behaves as if ``IGNORE`` were given and turns every row error into a warning;
``_statement`` therefore reads ``SHOW WARNINGS`` after every statement and treats anything
but 1062 (duplicate key) as bad content. ``insert`` needs no ``local_infile``.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from mysql.connector import errors as myerrors

from auditstream import mysql as db
from auditstream.dsn import MySQLDsn
from auditstream.errors import ArchiveContentError, ArchiveError
from consumer import highwater
from consumer.batch import DeadLetter, Item, TopicPartition
from consumer.errors import ArchiveSchemaError, Fenced
from consumer.rows import AUDIT_COLUMNS, CONTROL_COLUMNS, Identity, load_data_text

try:  # the C extension's commit/rollback raise its raw error, not a mysql.connector.Error
    from _mysql_connector import MySQLError as _RawError  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - pure Python connector
    _RawError = db.Error

log = logging.getLogger(__name__)

#: Everything the connector raises for a failed statement, commit or rollback.
DB_ERRORS: tuple[type[Exception], ...] = (db.Error, _RawError)

_DUPLICATE = 1062
_SCHEMA_ERRORS = {1146, 1054, 1142, 1143}  # no such table / column, no privilege on it
_CHUNK_ROWS = 2000
#: Text per statement: a multi-row INSERT must stay below max_allowed_packet (64 MiB on MySQL 8),
#: or the server drops the connection and the batch would be retried forever as an outage.
_CHUNK_BYTES = 16 * 1024 * 1024

Rows = list[tuple[Any, ...]]
AuditRow = tuple[Item, Identity, tuple[Any, ...]]


@dataclass
class Prepared:
    """A batch ready to write: rows with the items they came from, and dead letters so far."""

    audit: list[AuditRow] = field(default_factory=list)
    control: list[tuple[Item, tuple[Any, ...]]] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    next_offsets: dict[TopicPartition, int] = field(default_factory=dict)


@dataclass
class WriteResult:
    """What one committed transaction did."""

    inserted: int = 0
    duplicates: int = 0
    control: int = 0
    dead: list[DeadLetter] = field(default_factory=list)


class Sink:
    """One connection to the archive; not thread-safe (one per member)."""

    def __init__(
        self, dsn: MySQLDsn, member: str, method: Literal["load", "insert"] = "load"
    ) -> None:
        self._dsn = dsn
        self._member = member
        self.method = method
        self._conn: db.Connection | None = None
        self._file = Path(tempfile.mkdtemp(prefix="auditstream-load-")) / "batch.tsv"
        # Only this file is ever sent: the client allows LOCAL INFILE, so a compromised server
        # could ask for others; the archive server is trusted like the data it holds.

    def _cursor(self) -> Any:
        if self._conn is None:
            try:
                self._conn = db.connect(self._dsn, allow_local_infile=self.method == "load")
                cur: Any = self._conn.cursor()
                cur.execute("SET SESSION max_error_count = 65535")
                if self.method == "load":
                    cur.execute("SELECT @@GLOBAL.local_infile")
                    if not int(cur.fetchall()[0][0]):
                        log.warning("local_infile is OFF on the archive: using multi-row INSERT")
                        self.method = "insert"
            except DB_ERRORS as exc:
                self._conn = None
                raise ArchiveError(
                    f"cannot connect to the archive: {exc}", dsn=str(self._dsn)
                ) from exc
        return self._conn.cursor()

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back by the server)."""
        if self._conn is not None:
            try:
                self._conn.close()
            except DB_ERRORS:
                log.debug("close failed", exc_info=True)
            self._conn = None
        shutil.rmtree(self._file.parent, ignore_errors=True)

    def stored_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        """The next offsets stored for ``tps`` (None: nothing archived yet), creating rows."""
        try:
            cur = self._cursor()
            now = _now()
            for topic, partition in tps:
                cur.execute(
                    "INSERT INTO audit_offsets (topic, kafka_partition, next_offset, updated_at) "
                    "VALUES (%s, %s, NULL, %s) ON DUPLICATE KEY UPDATE topic = topic",
                    (topic, partition, now),
                )
            stored = self._read_offsets(cur, tps, lock=False)
            self._commit()
        except DB_ERRORS as exc:
            raise self._failed(exc) from exc
        return stored

    def write(
        self,
        batch: Prepared,
        expected: dict[TopicPartition, int | None],
        dead_letter: Callable[[list[DeadLetter]], None],
    ) -> WriteResult:
        """Write ``batch`` and its next offsets in one transaction (steps in the module doc).

        Raises:
            Fenced: another member moved a partition's offset on (nothing was written).
            ArchiveSchemaError: audit_data or another table is missing (nothing was written).
            ArchiveError: the archive failed; retry the same batch later.
            BrokerError: ``dead_letter`` failed; retry the same batch later.
        """
        result = WriteResult(dead=list(batch.dead))
        try:
            cur = self._cursor()
            # Step 1: compare-and-set on the stored offsets.
            stored = self._read_offsets(cur, sorted(batch.next_offsets), lock=True)
            _compare(stored, expected)
            # Step 2: high-water marks; re-sends across rotations are dropped.
            audit, marks = self._drop_resent(cur, batch.audit, result)
            # Step 3: rows; bad content isolated, duplicates of the key skipped.
            rows = [row for _, _, row in audit]
            bad = self._insert(cur, "audit_data", AUDIT_COLUMNS, rows, result)
            good = [a for i, a in enumerate(audit) if i not in bad]
            result.dead += [
                DeadLetter(audit[i][0], e.__class__.__name__, str(e)) for i, e in bad.items()
            ]
            crows = [row for _, row in batch.control]
            cbad = self._insert(cur, "audit_control", CONTROL_COLUMNS, crows, None)
            result.control = len(crows) - len(cbad)
            result.dead += [
                DeadLetter(batch.control[i][0], e.__class__.__name__, str(e))
                for i, e in cbad.items()
            ]
            # Step 4: marks, offsets, dead letters acknowledged, commit.
            highwater.save_marks(cur, _raised_marks(good, marks))
            self._save_offsets(cur, batch.next_offsets)
            if result.dead:
                dead_letter(result.dead)
            self._commit()
        except DB_ERRORS as exc:
            self._rollback()
            raise self._failed(exc) from exc
        except BaseException:
            self._rollback()
            raise
        return result

    def _drop_resent(
        self, cur: Any, audit: list[AuditRow], result: WriteResult
    ) -> tuple[list[AuditRow], dict[str, Identity]]:
        marks = highwater.lock_marks(cur, (row[0] for _, _, row in audit))
        below: list[highwater.Key] = []
        for _, ident, row in audit:
            mark = marks.get(row[0])
            if mark is not None and (ident.ts, ident.id) <= (mark.ts, mark.id):
                below.append((row[0], ident.ts, ident.id))
        if not below:
            return audit, marks
        seen = highwater.archived(cur, below)
        kept = [a for a in audit if (a[2][0], a[1].ts, a[1].id) not in seen]
        result.duplicates += len(audit) - len(kept)
        return kept, marks

    def _insert(
        self, cur: Any, table: str, columns: Sequence[str], rows: Rows, result: WriteResult | None
    ) -> dict[int, ArchiveContentError]:
        """Insert ``rows``; return ``{row index: error}`` of the rows rejected for content."""
        bad: dict[int, ArchiveContentError] = {}

        def attempt(lo: int, hi: int) -> None:
            cur.execute("SAVEPOINT chunk")
            try:
                inserted = self._statement(cur, table, columns, rows[lo:hi])
            except ArchiveContentError as exc:
                cur.execute("ROLLBACK TO SAVEPOINT chunk")
                if hi - lo == 1:
                    bad[lo] = exc
                    return
                mid = (lo + hi) // 2
                attempt(lo, mid)
                attempt(mid, hi)
                return
            if result is not None:
                result.inserted += inserted
                result.duplicates += hi - lo - inserted

        for lo, hi in _chunks(rows):
            attempt(lo, hi)
        return bad

    def _statement(self, cur: Any, table: str, columns: Sequence[str], rows: Rows) -> int:
        """One statement for ``rows``; returns rows inserted. Raises ArchiveContentError."""
        names = ", ".join(columns)
        try:
            if self.method == "load" and table == "audit_data":
                self._file.write_bytes(load_data_text(rows))
                cur.execute(
                    f"LOAD DATA LOCAL INFILE %s INTO TABLE {table} CHARACTER SET utf8mb4 ({names})",
                    (str(self._file),),
                )
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
            if isinstance(exc, myerrors.DataError | myerrors.IntegrityError) and exc.errno != 1213:
                raise ArchiveContentError(f"row rejected: {exc.msg}", table=table) from exc
            raise
        if warnings:
            cur.execute("SHOW WARNINGS")
            shown = cur.fetchall()
            other = [w for w in shown if int(w[1]) != _DUPLICATE]
            if other or len(shown) < warnings:
                what = other[0][2] if other else f"{warnings} warnings"
                raise ArchiveContentError(f"row rejected: {what}", table=table)
        return max(inserted, 0)

    def _read_offsets(
        self, cur: Any, tps: Sequence[TopicPartition], *, lock: bool
    ) -> dict[TopicPartition, int | None]:
        if not tps:
            return {}
        where = " OR ".join(["(topic = %s AND kafka_partition = %s)"] * len(tps))
        cur.execute(
            f"SELECT topic, kafka_partition, next_offset FROM audit_offsets WHERE {where} "
            "ORDER BY topic, kafka_partition" + (" FOR UPDATE" if lock else ""),
            [v for tp in tps for v in tp],
        )
        rows = {(str(t), int(p)): (None if o is None else int(o)) for t, p, o in cur.fetchall()}
        return {tp: rows.get(tp) for tp in tps}

    def _save_offsets(self, cur: Any, offsets: dict[TopicPartition, int]) -> None:
        now = _now()
        for (topic, partition), offset in sorted(offsets.items()):
            cur.execute(
                "INSERT INTO audit_offsets "
                "(topic, kafka_partition, next_offset, member, updated_at) "
                "VALUES (%s, %s, %s, %s, %s) ON DUPLICATE KEY UPDATE "
                "next_offset = %s, member = %s, updated_at = %s",
                (topic, partition, offset, self._member, now, offset, self._member, now),
            )

    def _commit(self) -> None:
        assert self._conn is not None  # noqa: S101 - a cursor was made before
        self._conn.commit()

    def _rollback(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.rollback()
        except DB_ERRORS:
            log.debug("rollback failed; dropping the connection", exc_info=True)
            self.close_connection()

    def close_connection(self) -> None:
        """Drop the connection (it is reopened on the next write)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except DB_ERRORS:
                log.debug("close failed", exc_info=True)

    def _failed(self, exc: Exception) -> ArchiveError:
        errno = getattr(exc, "errno", None)
        if errno in _SCHEMA_ERRORS:
            return ArchiveSchemaError(
                f"the archive schema is incomplete ({exc}): run `consumer setup`",
                dsn=str(self._dsn),
            )
        if isinstance(exc, _RawError) or db.is_connection_error(exc):
            self.close_connection()
        return ArchiveError(f"archive write failed: {exc}", dsn=str(self._dsn))


def _chunks(rows: Rows) -> list[tuple[int, int]]:
    """``[lo, hi)`` ranges of at most ``_CHUNK_ROWS`` rows and about ``_CHUNK_BYTES`` of text."""
    out = []
    lo, size = 0, 0
    for i, row in enumerate(rows):
        size += sum(len(v) for v in row if v.__class__ is str)
        if i > lo and (i - lo >= _CHUNK_ROWS or size > _CHUNK_BYTES):
            out.append((lo, i))
            lo, size = i, sum(len(v) for v in row if v.__class__ is str)
    if lo < len(rows):
        out.append((lo, len(rows)))
    return out


def _compare(
    stored: dict[TopicPartition, int | None], expected: dict[TopicPartition, int | None]
) -> None:
    moved = {tp: v for tp, v in stored.items() if v != expected.get(tp)}
    if moved:
        raise Fenced("another member archived these partitions", moved)


def _raised_marks(
    good: list[AuditRow], marks: dict[str, Identity]
) -> dict[str, tuple[Identity, str, int, int]]:
    raised: dict[str, tuple[Identity, str, int, int]] = {}
    for item, ident, row in good:
        server = row[0]
        top = raised[server][0] if server in raised else marks.get(server)
        if top is None or (ident.ts, ident.id) > (top.ts, top.id):
            raised[server] = (ident, item.topic, item.partition, item.offset)
    return raised


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
