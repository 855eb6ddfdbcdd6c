"""The archive writer: one batch and its offsets in ONE transaction (design.md, consumer step 3).

``Sink.write`` runs, inside a single transaction:

1. Lock the partitions' offset rows and compare them with what this member read from
   (compare-and-set, ``consumer.offsets``): a member that lost a partition writes nothing.
2. Lock the servers' high-water marks; drop re-sent events already archived, even in a rotated
   table (``consumer.highwater``).
3. Insert the audit rows and the control rows (``consumer.insert``). Only primary-key duplicates
   are skipped; any other error or warning for a row is bad content: it is isolated so the good
   rows still land, and dead-lettered.
4. Raise the marks, store the next offsets, hand the dead letters to the DLQ (which must be
   acknowledged), and commit.

A crash anywhere before the commit leaves nothing behind: the batch is replayed from the offsets
of the last committed transaction. A commit whose outcome is unknown (connection lost during
``COMMIT``) is safe too: the retry finds the offsets moved on and is fenced.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from auditstream import mysql as db
from auditstream.dsn import MySQLDsn
from auditstream.errors import ArchiveError
from consumer import highwater, offsets
from consumer.batch import DeadLetter, Item, TopicPartition
from consumer.errors import ArchiveSchemaError
from consumer.insert import DB_ERRORS, Method, RawError, RowWriter
from consumer.rows import AUDIT_COLUMNS, CONTROL_COLUMNS, Identity

log = logging.getLogger(__name__)

_SCHEMA_ERRORS = {1146, 1054, 1142, 1143}  # no such table / column, no privilege on it


class AuditRow(NamedTuple):
    """One decoded audit event on its way into ``audit_data`` (one per row: keep it a tuple).

    ``row`` or ``line`` may be None, never both: a batch prepared for ``LOAD DATA`` by the
    compiled reader has only lines (``Sink.write`` refuses it, retriably, if the archive
    has turned ``local_infile`` off since: the loop decodes it again with rows).
    """

    item: Item
    ident: Identity
    #: the server's uuid (the first column)
    server: str
    #: the column values in ``AUDIT_COLUMNS`` order, or None: only the line was made
    row: tuple[Any, ...] | None
    #: the row's ``LOAD DATA`` line in UTF-8, or None: the sink builds it when needed
    line: bytes | None


@dataclass
class Prepared:
    """A batch ready to write: rows with the items they came from, and dead letters so far."""

    audit: list[AuditRow] = field(default_factory=list)
    control: list[tuple[Item, tuple[Any, ...]]] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    next_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    #: ``summarize(audit)`` and the audit lines joined, made by ``seal`` on the loop thread
    #: while the writer's transaction of the batch before runs; None: the writer makes them.
    summary: Summary | None = None
    data: bytes | None = None

    def seal(self) -> None:
        """Make ``summary`` and ``data`` now, from ``audit`` as it is (no change after this).

        Trap: the writer thread's Python costs about double while the loop thread holds the
        GIL, and the server idles meanwhile; measured per 2,000-row transaction, the summary
        took 5-7 ms there (1.9 ms alone).
        """
        self.summary = summarize(self.audit)
        lines = all_lines(self.audit)
        self.data = None if lines is None else b"".join(lines)


def all_lines(audit: list[AuditRow]) -> list[bytes] | None:
    """Every row's ``LOAD DATA`` line, or None when a row has none (its rows are written)."""
    lines = [a.line for a in audit if a.line is not None]
    return lines if len(lines) == len(audit) else None


class Span(NamedTuple):
    """One server's rows in a batch: the lowest identity, and the highest as the mark it sets."""

    low: Identity
    high: highwater.Mark


class Summary(NamedTuple):
    """Per server its ``Span``; per partition the newest event time (``WriteResult.newest``)."""

    spans: dict[str, Span]
    newest: dict[TopicPartition, datetime]


def summarize(audit: list[AuditRow]) -> Summary:
    """The rows' spans and newest times, in one pass (steps 2 and 4 read them).

    Ties keep the first row: the mark of equal identities names the first message.

    It runs once per batch on the loop thread (``Prepared.seal``), and again in the writer's
    transaction only for the rows left after some were dropped. Either way it is per-row Python
    on a hot path, so the pass keeps, per server, only the positions of its lowest and highest
    rows and compares plain values; the marks are built once at the end (the pass that built a
    ``Mark`` per row took 14 ms of a 160 ms transaction when the writer made it).
    """
    # Per server: [index of the lowest row, its ts, its id, index of the highest, ts, id].
    ends: dict[str, list[Any]] = {}
    newest: dict[TopicPartition, datetime] = {}
    for i, (item, ident, server, _, _) in enumerate(audit):
        ts, n = ident.ts, ident.id
        end = ends.get(server)
        if end is None:
            ends[server] = [i, ts, n, i, ts, n]
        elif ts > end[4] or (ts == end[4] and n > end[5]):
            end[3:] = i, ts, n
        elif ts < end[1] or (ts == end[1] and n < end[2]):
            end[:3] = i, ts, n
        tp = (item.topic, item.partition)
        if tp not in newest or ts > newest[tp]:
            newest[tp] = ts
    spans: dict[str, Span] = {}
    for server, (low, _, _, high, _, _) in ends.items():
        item, ident = audit[high].item, audit[high].ident
        spans[server] = Span(
            audit[low].ident, highwater.Mark(ident, item.topic, item.partition, item.offset)
        )
    return Summary(spans, newest)


@dataclass
class WriteResult:
    """What one committed transaction did."""

    inserted: int = 0
    duplicates: int = 0
    control: int = 0
    dead: list[DeadLetter] = field(default_factory=list)
    #: Per partition, the time of the newest event now in the archive (for event-time lag).
    newest: dict[TopicPartition, datetime] = field(default_factory=dict)


class Sink:
    """One connection to the archive; not thread-safe (one per member)."""

    def __init__(self, dsn: MySQLDsn, member: str, method: Method = "load") -> None:
        self._dsn = dsn
        self._member = member
        self._rows = RowWriter(method)
        self._conn: db.Connection | None = None
        # One cursor per connection: the C extension's ``cursor()`` pings the server (a round
        # trip per batch, and a GIL hand-over on the writer thread).
        self._cur: Any = None

    @property
    def method(self) -> Method:
        """The insert path in use (``load`` falls back to ``insert`` without local_infile)."""
        return self._rows.method

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
                        self._rows.method = "insert"
                self._cur = cur
            except DB_ERRORS as exc:
                self._conn = self._cur = None
                raise ArchiveError(
                    f"cannot connect to the archive: {exc}", dsn=str(self._dsn)
                ) from exc
        return self._cur

    def close(self) -> None:
        """Close the connection (an open transaction is rolled back) and remove temp files."""
        self.close_connection()
        self._rows.close()

    def close_connection(self) -> None:
        """Drop the connection (it is reopened on the next write)."""
        conn, self._conn, self._cur = self._conn, None, None
        if conn is not None:
            try:
                conn.close()
            except DB_ERRORS:
                log.debug("close failed", exc_info=True)

    def stored_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int | None]:
        """The next offsets stored for ``tps`` (None: nothing archived yet), creating rows.

        Raises:
            ArchiveError: the archive failed (retriable) or lacks its tables (not retriable).
        """
        try:
            cur = self._cursor()
            offsets.ensure(cur, tps)
            stored = offsets.read(cur, tps, lock=False)
            self._commit()
        except DB_ERRORS as exc:
            self._rollback()
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
            self._check_rows(batch)
            # Step 1: compare-and-set on the stored offsets.
            offsets.compare(offsets.read(cur, sorted(batch.next_offsets), lock=True), expected)
            # Step 2: high-water marks; re-sends across rotations are dropped.
            summary = batch.summary if batch.summary is not None else summarize(batch.audit)
            audit, marks = self._drop_resent(cur, batch.audit, summary, result)
            # Step 3: rows; bad content isolated, duplicates of the key skipped.
            rows = [a.row for a in audit if a.row is not None]  # [] when only lines were made
            inserted, dups, bad = self._rows.insert(
                cur,
                "audit_data",
                AUDIT_COLUMNS,
                rows,
                all_lines(audit),
                data=batch.data if audit is batch.audit else None,
            )
            result.inserted, result.duplicates = inserted, result.duplicates + dups
            result.dead += [_letter(audit[i][0], e) for i, e in bad.items()]
            good = [a for i, a in enumerate(audit) if i not in bad] if bad else audit
            if good is not batch.audit:  # rows dropped or bad: the marks come from the rest
                summary = summarize(good)
            control, _, cbad = self._rows.insert(
                cur, "audit_control", CONTROL_COLUMNS, [row for _, row in batch.control]
            )
            result.control = control
            result.dead += [_letter(batch.control[i][0], e) for i, e in cbad.items()]
            # Step 4: marks, offsets, dead letters acknowledged, commit.
            highwater.save_marks(cur, _raised_marks(summary, marks))
            result.newest = summary.newest
            offsets.save(cur, batch.next_offsets, self._member)
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

    def _check_rows(self, batch: Prepared) -> None:
        """Raise a retriable ``ArchiveError`` when ``INSERT`` needs rows the batch lacks.

        A batch prepared for ``LOAD DATA`` has only lines; the archive may have turned
        ``local_infile`` off since (seen on reconnecting). The loop then decodes it again.
        """
        if self.method != "load" and any(a.row is None for a in batch.audit):
            raise ArchiveError(
                "the archive turned local_infile off: the batch, prepared for LOAD DATA, "
                "is decoded again for INSERT",
                dsn=str(self._dsn),
            )

    def _drop_resent(
        self, cur: Any, audit: list[AuditRow], summary: Summary, result: WriteResult
    ) -> tuple[list[AuditRow], dict[str, Identity]]:
        marks = highwater.lock_marks(cur, summary.spans)
        if all(_above(span.low, marks.get(server)) for server, span in summary.spans.items()):
            return audit, marks  # every row above its server's mark: nothing re-sent
        below: list[highwater.Key] = []
        for _, ident, server, _, _ in audit:
            mark = marks.get(server)
            if mark is not None and (ident.ts, ident.id) <= (mark.ts, mark.id):
                below.append(highwater.Key(server, ident.ts, ident.id))
        if not below:
            return audit, marks
        seen = highwater.archived(cur, below)
        kept = [a for a in audit if (a.server, a.ident.ts, a.ident.id) not in seen]
        result.duplicates += len(audit) - len(kept)
        return kept, marks

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

    def _failed(self, exc: Exception) -> ArchiveError:
        if getattr(exc, "errno", None) in _SCHEMA_ERRORS:
            return ArchiveSchemaError(
                f"the archive schema is incomplete ({exc}): run `consumer setup`",
                dsn=str(self._dsn),
            )
        if isinstance(exc, RawError) or db.is_connection_error(exc):
            self.close_connection()
        return ArchiveError(f"archive request failed: {exc}", dsn=str(self._dsn))


def _letter(item: Item, error: Exception) -> DeadLetter:
    return DeadLetter(item, type(error).__name__, str(error))


def _above(ident: Identity, mark: Identity | None) -> bool:
    return mark is None or (ident.ts, ident.id) > (mark.ts, mark.id)


def _raised_marks(summary: Summary, marks: dict[str, Identity]) -> dict[str, highwater.Mark]:
    """Each server's newest written event, where it is above the server's mark."""
    return {
        server: span.high
        for server, span in summary.spans.items()
        if _above(span.high.ident, marks.get(server))
    }
