"""The on-disk index: one row per ``(server_uuid, timestamp, id)``, columns per store.

Readers stream what they find into :class:`KeyIndex` (``add``, ``mark``); the comparison then
scans it once, in key order (``rows``). SQLite holds the rows in a temporary file, so memory
stays bounded (its page cache) however many events a range holds, and no store has to be read
in key order: a topic holds re-sends out of order, dumps and tables overlap.

Per store ``s`` (``source``, ``topic``, ``table``, ``dump``) a row has:
``s_n`` (copies seen), ``s_digest`` (SHA-256 of the first copy's raw text), ``s_alt`` (a later
copy had another digest), ``s_where``/``s_where2`` (where the first and the last copy are) and
``s_name`` (the table or dump holding the first copy). Marks (``gap``, ``dlq``) say that a gap
control event or a dead letter names the key.

Trap: ids are unsigned 64-bit, SQLite integers are signed; ids are stored as zero-padded text,
which sorts the same way.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import NamedTuple

STORES = ("source", "topic", "table", "dump")
MARKS = ("gap", "dlq")
_BATCH = 5000


def _columns() -> str:
    cols = []
    for s in STORES:
        cols += [
            f"{s}_n INTEGER NOT NULL DEFAULT 0",
            f"{s}_digest BLOB",
            f"{s}_alt INTEGER NOT NULL DEFAULT 0",
            f"{s}_where TEXT",
            f"{s}_where2 TEXT",
            f"{s}_name TEXT",
        ]
    cols += [f"{m} TEXT" for m in MARKS]
    return ", ".join(cols)


_DDL = (
    f"CREATE TABLE k (server TEXT NOT NULL, ts TEXT NOT NULL, id TEXT NOT NULL, {_columns()}, "
    "PRIMARY KEY (server, ts, id)) WITHOUT ROWID"
)


def _upsert(store: str) -> str:
    s = store
    return (
        f"INSERT INTO k (server, ts, id, {s}_n, {s}_digest, {s}_where, {s}_name) "
        "VALUES (?, ?, ?, 1, ?, ?, ?) ON CONFLICT (server, ts, id) DO UPDATE SET "
        f"{s}_alt = {s}_alt OR ({s}_n > 0 AND {s}_digest IS NOT excluded.{s}_digest), "
        f"{s}_where2 = CASE WHEN {s}_n > 0 THEN excluded.{s}_where ELSE {s}_where2 END, "
        f"{s}_where = CASE WHEN {s}_n > 0 THEN {s}_where ELSE excluded.{s}_where END, "
        f"{s}_name = CASE WHEN {s}_n > 0 THEN {s}_name ELSE excluded.{s}_name END, "
        f"{s}_digest = CASE WHEN {s}_n > 0 THEN {s}_digest ELSE excluded.{s}_digest END, "
        f"{s}_n = {s}_n + 1"
    )


def _mark(mark: str) -> str:
    return (
        f"INSERT INTO k (server, ts, id, {mark}) VALUES (?, ?, ?, ?) "
        f"ON CONFLICT (server, ts, id) DO UPDATE SET {mark} = coalesce({mark}, excluded.{mark})"
    )


class Seen(NamedTuple):
    """What one store holds of a key (``n == 0``: nothing)."""

    n: int
    digest: bytes | None
    altered: bool
    where: str | None
    where2: str | None
    name: str | None


class Row(NamedTuple):
    """One key and what every store holds of it."""

    server_uuid: str
    ts: str
    id: int
    stores: dict[str, Seen]
    gap: str | None
    dlq: str | None

    @property
    def position(self) -> str:
        """``ts#id``."""
        return f"{self.ts}#{self.id}"


class Mark(NamedTuple):
    """A gap (``"gap"``) or a dead letter (``"dlq"``) naming a key, and what to say of it."""

    mark: str
    server_uuid: str
    ts: str
    id: int
    what: str


class KeyIndex:
    """The index in a temporary SQLite file (removed on ``close``).

    Args:
        directory: where the temporary file goes (default: the system's temp directory).
        cache_mib: SQLite's page cache, the index's memory bound.
    """

    def __init__(self, directory: Path | None = None, cache_mib: int = 64) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="reconcile-", dir=directory)
        self._db = sqlite3.connect(Path(self._dir.name) / "index.sqlite3", isolation_level=None)
        for pragma in ("journal_mode = OFF", "synchronous = OFF", "temp_store = FILE"):
            self._db.execute(f"PRAGMA {pragma}")
        self._db.execute(f"PRAGMA cache_size = -{int(cache_mib) * 1024}")
        self._db.execute(_DDL)
        self._pending: dict[str, list[tuple[object, ...]]] = {}

    def add(
        self, store: str, server_uuid: str, ts: str, id_: int, digest: bytes, where: str, name: str
    ) -> None:
        """Record one copy of a key in ``store`` (buffered; ``flush`` before reading)."""
        self._queue(store, (server_uuid, ts, _id(id_), digest, where, name))

    def mark(self, mark: str, server_uuid: str, ts: str, id_: int, what: str) -> None:
        """Record that a gap (``"gap"``) or a dead letter (``"dlq"``) names this key."""
        self._queue(mark, (server_uuid, ts, _id(id_), what))

    def apply(self, marks: Iterable[Mark]) -> None:
        """Record ``marks`` (kept elsewhere first: ``reconcile.topic.MarkBuffer``)."""
        for m in marks:
            self.mark(m.mark, m.server_uuid, m.ts, m.id, m.what)

    def flush(self) -> None:
        """Write the buffered copies."""
        for kind, rows in self._pending.items():
            if rows:
                sql = _upsert(kind) if kind in STORES else _mark(kind)
                self._db.execute("BEGIN")
                self._db.executemany(sql, rows)
                self._db.execute("COMMIT")
                rows.clear()

    def rows(self) -> Iterator[Row]:
        """Every key in ``(server_uuid, timestamp, id)`` order."""
        self.flush()
        cur = self._db.execute("SELECT * FROM k ORDER BY server, ts, id")
        spans = [(s, 3 + i * 6, 9 + i * 6) for i, s in enumerate(STORES)]
        base = 3 + len(STORES) * 6
        for r in cur:
            stores = {s: Seen._make(r[a:b]) for s, a, b in spans}
            yield Row(r[0], r[1], int(r[2]), stores, r[base], r[base + 1])

    def count(self, store: str) -> int:
        """Distinct keys ``store`` holds."""
        self.flush()
        sql = f"SELECT COUNT(*) FROM k WHERE {store}_n > 0"  # a constant name
        (n,) = self._db.execute(sql).fetchone()
        return int(n)

    def close(self) -> None:
        """Drop the index file."""
        self._db.close()
        self._dir.cleanup()

    def __enter__(self) -> KeyIndex:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _queue(self, kind: str, row: tuple[object, ...]) -> None:
        if kind not in STORES and kind not in MARKS:
            raise ValueError(f"unknown store or mark {kind!r}")
        rows = self._pending.setdefault(kind, [])
        rows.append(row)
        if len(rows) >= _BATCH:
            self.flush()


def _id(id_: int) -> str:
    return f"{int(id_):020d}"
