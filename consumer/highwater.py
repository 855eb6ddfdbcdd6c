"""Per-server high-water marks: a producer re-send never lands twice, even across a rotation.

The rule (design.md, consumer step 3):

- Each server's mark is the greatest ``(ts, id)`` archived so far. It is read ``FOR UPDATE`` and
  written in the same transaction as the rows, and it lives outside ``audit_data``, so rotation
  does not reset it.
- An event above the mark is new: it is written, and the mark moves up to it. This is the hot
  path and costs no lookup.
- An event at or below the mark is either a producer re-send (its first copy may be in a table
  rotated away since) or a genuinely new event written after the audited server's clock stepped
  back (Oracle ids are per-second counters, so such an event sorts below the mark). It is looked
  up by its primary key in ``audit_data`` and in every rotated table still present: found means
  a re-send (skipped); not found means a new event (written). A clock step-back therefore never
  loses events; it only costs lookups until the clock passes the mark again.

Traps:

- The lookup in ``audit_data`` comes first: it takes the table's metadata lock, so a concurrent
  ``RENAME TABLE audit_data TO ...`` waits for this transaction's commit and the rotated tables
  listed afterwards include any rotation that happened before it.
- A rotated table already dropped by retention is no longer searched: a re-send of an event whose
  first copy only survives in object storage would be written again. Re-sends follow a producer
  crash within one batch, long before retention drops anything.
- Two different events with the same ``(server_uuid, ts, id)`` (a clock step-back on an Oracle
  server can produce them) are one event to the whole pipeline: the second is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from auditstream.sqlident import ROTATED_TABLE, rotated_table
from consumer.rows import Identity


class Key(NamedTuple):
    """An event's key as the archive stores it: ``(server_uuid, ts, id)``, ``ts`` naive UTC."""

    server_uuid: str
    ts: datetime
    id: int


class Mark(NamedTuple):
    """A server's new high-water mark: its newest event in the batch, and that event's message."""

    ident: Identity
    topic: str
    partition: int
    offset: int


_LOOKUP_CHUNK = 500
_TABLES_PER_QUERY = 16


def lock_marks(cur: Any, servers: Iterable[str]) -> dict[str, Identity]:
    """Read (and lock until commit) the marks of ``servers``; unknown servers are absent."""
    names = sorted(set(servers))
    if not names:
        return {}
    marks = ", ".join(["%s"] * len(names))
    cur.execute(
        f"SELECT server_uuid, ts, id FROM audit_high_water WHERE server_uuid IN ({marks}) "
        "ORDER BY server_uuid FOR UPDATE",
        names,
    )
    return {row[0]: Identity(row[1], int(row[2])) for row in cur.fetchall()}


def archived(cur: Any, keys: list[Key]) -> set[Key]:
    """The keys among ``keys`` already present in audit_data or a rotated table."""
    if not keys:
        return set()
    found = _lookup(cur, ["audit_data"], keys)  # first: holds off a rotation until commit
    cur.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = DATABASE() AND table_name LIKE %s",
        ("audit\\_data\\_%",),
    )
    tables = sorted(
        (str(row[0]) for row in cur.fetchall() if ROTATED_TABLE.fullmatch(str(row[0]))),
        reverse=True,  # newest first: that is where a re-send's first copy usually is
    )
    rest = [k for k in keys if k not in found]
    for i in range(0, len(tables), _TABLES_PER_QUERY):
        if not rest:
            break
        found |= _lookup(cur, tables[i : i + _TABLES_PER_QUERY], rest)
        rest = [k for k in rest if k not in found]
    return found


def save_marks(cur: Any, marks: Mapping[str, Mark]) -> None:
    """Upsert ``{server: (identity, topic, partition, offset)}``, one statement for all.

    Callers pass only raised marks.
    """
    if not marks:
        return
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = sorted(marks.items())
    cur.execute(
        "INSERT INTO audit_high_water "
        "(server_uuid, ts, id, topic, kafka_partition, kafka_offset, updated_at) "
        f"VALUES {', '.join(['(%s, %s, %s, %s, %s, %s, %s)'] * len(rows))} "
        "ON DUPLICATE KEY UPDATE ts = VALUES(ts), id = VALUES(id), topic = VALUES(topic), "
        "kafka_partition = VALUES(kafka_partition), kafka_offset = VALUES(kafka_offset), "
        "updated_at = VALUES(updated_at)",
        [
            v
            for server, (ident, topic, partition, offset) in rows
            for v in (server, ident.ts, ident.id, topic, partition, offset, now)
        ],
    )


def _lookup(cur: Any, tables: list[str], keys: list[Key]) -> set[Key]:
    found: set[Key] = set()
    for i in range(0, len(keys), _LOOKUP_CHUNK):
        chunk = keys[i : i + _LOOKUP_CHUNK]
        tuples = ", ".join(["(%s, %s, %s)"] * len(chunk))
        params = [v for key in chunk for v in key]
        selects = [
            f"SELECT server_uuid, ts, id FROM {_quoted(t)} "
            f"WHERE (server_uuid, ts, id) IN ({tuples})"
            for t in tables
        ]
        cur.execute(" UNION ALL ".join(selects), params * len(tables))
        found |= {Key(str(s), ts, int(n)) for s, ts, n in cur.fetchall()}
    return found


def _quoted(table: str) -> str:
    return "`audit_data`" if table == "audit_data" else rotated_table(table)
