"""The rotation ledger (``audit_rotation``): each rotated table's progress towards the store.

States move forward only, one step at a time::

    rotated ──▶ dumped ──▶ uploaded ──▶ verified ──▶ dropped (retention only)
       └──▶ missing (the table vanished before a dump of it existed)

Every transition is a conditional ``UPDATE ... WHERE state = <from>`` committed on its own, so a
step that crashed before its transition simply runs again, and a step that ran twice (two
processes, a replay) moves the row once. Failures bump ``attempts`` and push ``next_attempt_at``
out exponentially; a failure that retrying cannot fix sets ``stuck`` for an operator
(docs/rotation.md says what to do).

The ledger also remembers the rotation schedule's period (``audit_rotation_period``, one row:
the UTC start of the period the live ``audit_data`` belongs to; ``consumer/rotation.py``).

Trap: the ledger is written on its own connection. Never share it with a session that runs DDL
(``RENAME``/``DROP`` commit implicitly and would commit a half-written ledger change).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sql
from auditstream import mysql
from auditstream.errors import ArchiveError
from auditstream.text import as_text

STATES = ("rotated", "dumped", "uploaded", "verified", "dropped", "missing")
PENDING = ("rotated", "dumped", "uploaded")
#: The columns an ``Entry`` is read from, in the order selected.
_FIELDS = (
    "table_name", "state", "stuck", "rotated_at", "method", "target", "row_count", "total_bytes",
    "manifest_sha256", "bookmarks", "objects", "attempts", "next_attempt_at", "last_error",
    "verified_at",
)  # fmt: skip
_COLUMNS = ", ".join(_FIELDS)


@dataclass(frozen=True)
class Entry:
    """One ledger row, as read."""

    table: str
    state: str
    stuck: bool
    rotated_at: datetime
    method: str | None = None
    target: str | None = None
    row_count: int | None = None
    total_bytes: int | None = None
    manifest_sha256: str | None = None
    bookmarks: dict[str, Any] = field(default_factory=dict)
    objects: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    verified_at: datetime | None = None


@contextmanager
def archive_errors(what: str, **context: Any) -> Iterator[None]:
    """Translate connector errors inside the block into ``ArchiveError`` with context."""
    try:
        yield
    except mysql.Error as exc:
        raise ArchiveError(f"{what} failed: {exc}", **context) from exc


def utc_naive(value: datetime) -> datetime:
    """``value`` in UTC without tzinfo, as a DATETIME column stores it."""
    return value.astimezone(UTC).replace(tzinfo=None)


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else value.replace(tzinfo=UTC)


_SET_PERIOD = "{verb} INTO audit_rotation_period (id, period_start, updated_at) VALUES (1, %s, %s)"


def _period_row(start: datetime, now: datetime) -> tuple[Any, ...]:
    return (utc_naive(start), utc_naive(now))


class Ledger:
    """Reads and moves ``audit_rotation`` rows on a connection of its own.

    Args:
        conn: a session on the archive database, used by nothing else.
        backoff: delay after the first failure; doubles per attempt.
        max_backoff: the longest delay between two attempts.
    """

    def __init__(
        self,
        conn: mysql.Connection,
        *,
        backoff: timedelta = timedelta(seconds=30),
        max_backoff: timedelta = timedelta(hours=1),
    ) -> None:
        self._conn = conn
        self._backoff = backoff
        self._max_backoff = max_backoff

    def close(self) -> None:
        """Close the ledger's connection."""
        self._conn.close()

    def unstick(self, table: str | None, now: datetime) -> int:
        """Clear ``stuck`` (one table, or all) so the next pass retries; return rows changed."""
        where = "stuck = 1" + (" AND table_name = %s" if table else "")
        with archive_errors("ledger update", table=table):
            cur = self._conn.cursor()
            cur.execute(
                "UPDATE audit_rotation SET stuck = 0, attempts = 0, next_attempt_at = NULL,"
                f" updated_at = %s WHERE {where}",
                (utc_naive(now), table) if table else (utc_naive(now),),
            )
            changed = int(cur.rowcount)
            self._conn.commit()
        return changed

    def ensure(self) -> None:
        """Create ``audit_rotation`` and ``audit_rotation_period`` if missing (idempotent)."""
        self._run([(stmt, ()) for stmt in sql.statements("archive/audit_rotation")])

    def record_rotated(
        self, table: str, rotated_at: datetime, now: datetime, *, period: datetime | None = None
    ) -> None:
        """Add ``table`` in state ``rotated``; a row already there is left as it is.

        ``period``: also record, in the same transaction, the schedule period the new
        ``audit_data`` belongs to (see ``set_period``).
        """
        statements: list[tuple[str, tuple[Any, ...]]] = [
            (
                "INSERT IGNORE INTO audit_rotation (table_name, state, rotated_at, updated_at)"
                " VALUES (%s, 'rotated', %s, %s)",
                (table, utc_naive(rotated_at), utc_naive(now)),
            )
        ]
        if period is not None:
            statements.append((_SET_PERIOD.format(verb="REPLACE"), _period_row(period, now)))
        self._run(statements)

    def get(self, table: str) -> Entry | None:
        """The row of ``table``, or None."""
        rows = self._select(
            f"SELECT {_COLUMNS} FROM audit_rotation WHERE table_name = %s", (table,)
        )
        return rows[0] if rows else None

    def all(self) -> list[Entry]:
        """Every row, oldest rotation first."""
        return self._select(
            f"SELECT {_COLUMNS} FROM audit_rotation ORDER BY rotated_at, table_name"
        )

    def pending(self, now: datetime) -> list[Entry]:
        """Rows not yet verified, not stuck, and due for an attempt; oldest first."""
        return self._select(
            f"SELECT {_COLUMNS} FROM audit_rotation WHERE state IN (%s, %s, %s) AND stuck = 0"
            " AND (next_attempt_at IS NULL OR next_attempt_at <= %s)"
            " ORDER BY rotated_at, table_name",
            (*PENDING, utc_naive(now)),
        )

    def names(self) -> set[str]:
        """Every table name the ledger has ever held (names are never reused)."""
        return {e.table for e in self.all()}

    def period(self) -> datetime | None:
        """The schedule period ``audit_data`` belongs to (its UTC start), or None if unrecorded."""
        rows = self._query("SELECT period_start FROM audit_rotation_period WHERE id = 1", ())
        value = rows[0][0] if rows else None
        return _aware(value) if isinstance(value, datetime) else None

    def set_period(self, start: datetime, now: datetime, *, only_if_unset: bool = False) -> None:
        """Record that ``audit_data`` belongs to the period starting at ``start``.

        ``only_if_unset``: keep a period already recorded (two rotators looking at a new archive
        at once agree on the first one's).
        """
        verb = "INSERT IGNORE" if only_if_unset else "REPLACE"
        self._run([(_SET_PERIOD.format(verb=verb), _period_row(start, now))])

    def last_rotated_at(self) -> datetime | None:
        """When the newest rotation happened, or None if there was none."""
        rows = self._query("SELECT MAX(rotated_at) FROM audit_rotation", ())
        value = rows[0][0] if rows else None
        return _aware(value) if isinstance(value, datetime) else None

    def advance(self, table: str, src: str, dst: str, now: datetime, **fields: Any) -> bool:
        """Move ``table`` from ``src`` to ``dst`` with ``fields``; False if it was not in ``src``.

        Clears the error and the retry schedule and stamps ``<dst>_at``.
        """
        values: dict[str, Any] = {
            k: (json.dumps(v, sort_keys=True) if isinstance(v, dict | list) else v)
            for k, v in fields.items()
        }
        values.update(state=dst, attempts=0, next_attempt_at=None, last_error=None)
        values["updated_at"] = utc_naive(now)
        if dst in ("dumped", "uploaded", "verified", "dropped"):
            values[f"{dst}_at"] = utc_naive(now)
        assignments = ", ".join(f"{name} = %s" for name in values)  # names: ours, not input
        with archive_errors("ledger update", table=table, state=dst):
            cur = self._conn.cursor()
            cur.execute(
                f"UPDATE audit_rotation SET {assignments} WHERE table_name = %s AND state = %s",
                (*values.values(), table, src),
            )
            moved = cur.rowcount == 1
            self._conn.commit()
        return moved

    def fail(self, table: str, error: BaseException, now: datetime, *, retriable: bool) -> None:
        """Record a failed attempt: the error, one more attempt, and when to try again."""
        entry = self.get(table)
        attempts = (entry.attempts if entry else 0) + 1
        delay = min(self._backoff * (2 ** (attempts - 1)), self._max_backoff)
        self._run(
            [
                (
                    "UPDATE audit_rotation SET attempts = %s, last_error = %s,"
                    " next_attempt_at = %s, stuck = %s, updated_at = %s WHERE table_name = %s",
                    (
                        attempts,
                        str(error)[:4000],
                        utc_naive(now + delay),
                        0 if retriable else 1,
                        utc_naive(now),
                        table,
                    ),
                )
            ]
        )

    def _run(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        with archive_errors("ledger write"):
            cur = self._conn.cursor()
            for stmt, params in statements:
                cur.execute(stmt, params)
            self._conn.commit()

    def _query(self, stmt: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with archive_errors("ledger read"):
            cur = self._conn.cursor()
            cur.execute(stmt, params)
            rows: list[tuple[Any, ...]] = list(cur.fetchall())  # type: ignore[arg-type]
            self._conn.commit()  # end the snapshot: the next read sees other sessions' changes
        return rows

    def _select(self, stmt: str, params: tuple[Any, ...] = ()) -> list[Entry]:
        return [_entry(dict(zip(_FIELDS, row, strict=True))) for row in self._query(stmt, params)]


def _entry(row: dict[str, Any]) -> Entry:
    """An ``Entry`` from a row selected with ``_COLUMNS``, by column name."""
    return Entry(
        table=as_text(row["table_name"]),
        state=as_text(row["state"]),
        stuck=bool(row["stuck"]),
        rotated_at=_aware(row["rotated_at"]) or datetime.min.replace(tzinfo=UTC),
        method=row["method"],
        target=row["target"],
        row_count=row["row_count"],
        total_bytes=row["total_bytes"],
        manifest_sha256=row["manifest_sha256"],
        bookmarks=json.loads(row["bookmarks"]) if row["bookmarks"] else {},
        objects=json.loads(row["objects"]) if row["objects"] else [],
        attempts=int(row["attempts"]),
        next_attempt_at=_aware(row["next_attempt_at"]),
        last_error=row["last_error"],
        verified_at=_aware(row["verified_at"]),
    )
