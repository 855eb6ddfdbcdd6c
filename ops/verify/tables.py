"""Links from the archive database: ``audit_data``, the rotated tables and ``audit_control``.

Steps (``read``):

1. List the event tables: every rotated ``audit_data_YYYYmmdd_HHMMSS[_N]`` in name order (the
   names come from a UTC clock, so name order is time order), then ``audit_data``.
2. Check that each has the ``chain``/``chain_seq`` columns (``NotChained`` says what to add).
3. Per server, stream its rows table after table in ``(ts, id)`` order, one keyset page at a
   time (the tables are never in memory), put moved rows back in chain order (``ordered``),
   and slot in its gaps from ``audit_control`` and any dead letters by ``seq``.

Trap: ``ts`` is a DATETIME holding UTC; the session runs in UTC (``auditstream.mysql.connect``)
and the value is hashed as the naive value's text, never converted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from auditstream.chain import Link
from auditstream.dsn import MySQLDsn
from auditstream.errors import ArchiveError
from auditstream.mysql import Connection, Error, connect
from auditstream.position import Position
from auditstream.sqlident import ROTATED_TABLE, ident
from auditstream.text import as_text
from consumer.rows import Identity
from ops.verify.control import CONTROL_TABLE, chain_links, control_columns
from ops.verify.core import interleave, ordered
from ops.verify.report import NotChained
from ops.verify.seals import control_links

EVENT_TABLE = "audit_data"
CHAIN_COLUMNS = ("chain", "chain_seq")
#: What the consumer's DDL must add (to audit_data_template and audit_control).
CHAIN_DDL = "chain CHAR(64) CHARACTER SET ascii NULL, chain_seq BIGINT UNSIGNED NULL"

_AFTER = " AND (ts > %s OR (ts = %s AND id > %s))"
_FROM = " AND (ts > %s OR (ts = %s AND id >= %s))"
_COLUMNS = (
    "SELECT table_name, column_name FROM information_schema.columns "
    "WHERE table_schema = DATABASE() AND column_name IN ('chain', 'chain_seq')"
)


def event_tables(conn: Connection) -> list[str]:
    """The rotated tables in time order, then ``audit_data`` (Step 1)."""
    cur = conn.cursor()
    cur.execute("SHOW TABLES")
    names = [as_text(row[0]) for row in cur.fetchall()]  # type: ignore[index]
    rotated = sorted(n for n in names if ROTATED_TABLE.fullmatch(n))
    return rotated + ([EVENT_TABLE] if EVENT_TABLE in names else [])


def _check_chained(conn: Connection, tables: Iterable[str]) -> None:
    """Step 2: every table must carry the chain columns.

    Raises:
        NotChained: a table lacks them; the message gives the DDL to add.
    """
    cur = conn.cursor()
    cur.execute(_COLUMNS)
    have: dict[str, set[str]] = {}
    for table, column in cur.fetchall():
        have.setdefault(as_text(table), set()).add(as_text(column))
    for table in tables:
        if have.get(table) != set(CHAIN_COLUMNS):
            raise NotChained(
                f"table has no chain columns: ALTER TABLE ... ADD COLUMN ({CHAIN_DDL})",
                table=table,
            )


def servers(conn: Connection, tables: Iterable[str]) -> list[str]:
    """Every server_uuid found in ``tables``, sorted."""
    found: set[str] = set()
    cur = conn.cursor()
    for table in tables:
        cur.execute(f"SELECT DISTINCT server_uuid FROM {ident(table)}")
        found.update(as_text(row[0]) for row in cur.fetchall())  # type: ignore[index]
    return sorted(found)


def events(
    conn: Connection,
    table: str,
    server: str,
    page_rows: int = 5000,
    since: Position | None = None,
    until: Position | None = None,
) -> Iterator[Link]:
    """The event links of ``server`` in ``table``, in ``(ts, id)`` order (Step 3).

    ``since``/``until`` narrow the read (``until`` to its second; ``scope.in_range`` is exact).
    """
    base = f"SELECT ts, id, raw, chain, chain_seq FROM {ident(table)} WHERE server_uuid = %s"
    params: list[Any] = [server]
    if until is not None:
        base += " AND ts <= %s"
        params.append(until.ts)
    order = f" ORDER BY ts, id LIMIT {int(page_rows)}"
    last: Identity | None = None
    while True:
        cur = conn.cursor()
        if last is not None:
            cur.execute(base + _AFTER + order, (*params, last.ts, last.ts, last.id))
        elif since is not None:
            cur.execute(base + _FROM + order, (*params, since.ts, since.ts, since.id))
        else:
            cur.execute(base + order, tuple(params))
        rows: list[Any] = list(cur.fetchall())
        conn.commit()
        for ts, id_, raw, chain, seq in rows:
            yield Link.event(
                server,
                ts,
                int(id_),
                as_text(raw),
                chain=as_text(chain) if chain is not None else None,
                seq=int(seq) if seq is not None else None,
                where=f"table {table} row (ts={ts}, id={id_})",
            )
        if len(rows) < page_rows:
            return
        last = Identity(rows[-1][0], rows[-1][1])


def gaps(conn: Connection, server: str | None = None) -> list[Link]:
    """The gap links of ``server`` (default: all) in ``audit_control`` (none without the table).

    Raises:
        NotChained: ``audit_control`` exists without the chain columns.
    """
    have = control_columns(conn)
    if not have:
        return []
    _check_chained(conn, [CONTROL_TABLE])
    return chain_links(conn, ("gap",), server, have)


def read_gaps(dsn: MySQLDsn) -> list[Link]:
    """Every gap link of the archive (for stores that hold events only, like dumps).

    Raises:
        NotChained: ``audit_control`` lacks the chain columns.
        ArchiveError: the database failed.
    """
    try:
        conn = connect(dsn)
        try:
            return gaps(conn) + control_links(conn)
        finally:
            conn.close()
    except Error as exc:
        raise ArchiveError(f"cannot read the gaps: {exc}", database=dsn.database) from exc


def read(
    dsn: MySQLDsn,
    only: Iterable[str] | None = None,
    extras: Iterable[Link] = (),
    page_rows: int = 5000,
    since: Position | None = None,
    until: Position | None = None,
) -> Iterator[Link]:
    """Every link in the archive (Steps 1-3), server by server.

    Args:
        dsn: the archive database.
        only: restrict to these servers.
        extras: links found elsewhere (dead letters), slotted in by ``seq``.
        page_rows: rows per keyset page.
        since: read from this bookmark on (the range itself is cut by ``scope.in_range``).
        until: read up to this bookmark's second.

    Raises:
        NotChained: a table lacks the chain columns.
        ArchiveError: the database failed.
    """
    extra = list(extras)
    try:
        conn = connect(dsn)
    except Error as exc:
        raise ArchiveError(f"cannot connect to the archive: {exc}", dsn=str(dsn)) from exc
    try:
        # Step 1
        tables = event_tables(conn)
        # Step 2
        _check_chained(conn, tables)
        wanted = sorted(set(only)) if only else servers(conn, tables)
        for server in wanted:
            # Step 3
            stream = (
                link for t in tables for link in events(conn, t, server, page_rows, since, until)
            )
            mine = [x for x in extra if x.server_uuid == server]
            links = gaps(conn, server) + control_links(conn, server) + mine
            yield from interleave(ordered(stream), links)
    except Error as exc:
        raise ArchiveError(f"cannot read the archive: {exc}", database=dsn.database) from exc
    finally:
        conn.close()
