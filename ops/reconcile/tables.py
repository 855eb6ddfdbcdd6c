"""The archive's side: ``audit_data``, every rotated table, and the gaps in ``audit_control``.

Steps (``read_tables``):

1. List the event tables (``verify.tables.event_tables``: rotated tables in time order, then
   ``audit_data``); their names come from the server and are checked by ``sqlident`` before
   they enter a statement.
2. Per table, read the keys in the range in ``(server_uuid, ts, id)`` order, one keyset page at
   a time, with the raw text's SHA-256 computed by the server (``SHA2(raw, 256)``: the raw text
   never crosses the network, and no table is ever held in memory).
3. Read the gaps of ``audit_control`` (a table without chain columns is fine here).

Trap: ``ts`` is a DATETIME holding UTC; the session runs in UTC (``auditstream.mysql.connect``)
and the value is formatted back to the server's text, never converted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from auditstream.dsn import MySQLDsn
from auditstream.errors import ArchiveError
from auditstream.mysql import Connection, Error, connect
from auditstream.sqlident import ident
from auditstream.text import as_text
from ops.reconcile.index import KeyIndex
from ops.reconcile.keys import KeyRange, ts_text
from ops.reconcile.topic import TopicResult, mark_gap
from ops.verify.control import control_rows, control_where
from ops.verify.tables import event_tables


@dataclass
class TablesResult:
    """The tables read and the rows found in each."""

    rows: dict[str, int] = field(default_factory=dict)
    gaps: TopicResult = field(default_factory=TopicResult)


def read_tables(
    dsn: MySQLDsn, index: KeyIndex, keys: KeyRange, page_rows: int = 5000
) -> TablesResult:
    """Read every event table and the gaps into ``index`` (Steps 1-3).

    Raises:
        ArchiveError: the archive cannot be reached or read.
    """
    result = TablesResult()
    try:
        conn = connect(dsn)
    except Error as exc:
        raise ArchiveError(f"cannot connect to the archive: {exc}", dsn=str(dsn)) from exc
    try:
        # Step 1
        for table in event_tables(conn):
            # Step 2
            result.rows[table] = _read_table(conn, table, index, keys, page_rows)
        # Step 3
        _read_gaps(conn, index, keys, result.gaps)
    except Error as exc:
        raise ArchiveError(f"cannot read the archive: {exc}", database=dsn.database) from exc
    finally:
        conn.close()
    return result


def _read_table(
    conn: Connection, table: str, index: KeyIndex, keys: KeyRange, page_rows: int
) -> int:
    where, params = _range_clause(keys)
    base = f"SELECT server_uuid, ts, id, SHA2(raw, 256) FROM {ident(table)} WHERE {where}"
    after = " AND (server_uuid > %s OR (server_uuid = %s AND (ts > %s OR (ts = %s AND id > %s))))"
    order = f" ORDER BY server_uuid, ts, id LIMIT {int(page_rows)}"
    count = 0
    last: tuple[Any, Any, Any] | None = None
    while True:
        cur = conn.cursor()
        if last is None:
            cur.execute(base + order, params)
        else:
            s, t, i = last
            cur.execute(base + after + order, (*params, s, s, t, t, i))
        rows: list[Any] = list(cur.fetchall())
        conn.commit()
        for server, ts, id_, sha in rows:
            uuid, text = as_text(server), ts_text(ts)
            where = f"table {table} row (server_uuid={uuid}, ts={text}, id={id_})"
            index.add("table", uuid, text, int(id_), bytes.fromhex(as_text(sha)), where, table)
        count += len(rows)
        if len(rows) < page_rows:
            return count
        last = rows[-1][0], rows[-1][1], rows[-1][2]


def _range_clause(keys: KeyRange) -> tuple[str, tuple[Any, ...]]:
    clauses: list[str] = ["TRUE"]
    params: list[Any] = []
    if keys.server_uuid is not None:
        clauses.append("server_uuid = %s")
        params.append(keys.server_uuid)
    if keys.start is not None:
        ts, id_ = keys.start
        clauses.append("(ts > %s OR (ts = %s AND id >= %s))")
        params += [ts, ts, id_]
    if keys.end is not None:
        ts, id_ = keys.end
        clauses.append("(ts < %s OR (ts = %s AND id <= %s))")
        params += [ts, ts, id_]
    return " AND ".join(clauses), tuple(params)


def _read_gaps(conn: Connection, index: KeyIndex, keys: KeyRange, result: TopicResult) -> None:
    for row in control_rows(conn, ("gap",)):
        result.gaps += 1
        mark_gap(index, keys, row.server_uuid, row._asdict(), control_where(row), result)
