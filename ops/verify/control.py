"""The archive's ``audit_control`` rows as ``consumer.rows.ControlRow``: one reader for the tools.

``verify`` reads the gaps (``verify.tables.gaps``) and the checkpoints and skips
(``verify.seals.control_links``) as chain links (``chain_links``), ``reconcile`` the gaps
(``reconcile.tables``) as rows (``control_rows``).

Traps:

- An archive set up by an older release lacks the columns added since (``chain``/``chain_seq``,
  the checkpoint columns of control_event v3). Only the columns the table has are read; the
  others stay None. A reader that needs some asks ``control_columns`` first.
- Some servers return ``ascii`` columns as bytes: every bytes value comes back as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from auditstream.chain import Link
from auditstream.mysql import Connection
from auditstream.text import as_text
from consumer.rows import CONTROL_COLUMNS, ControlRow

CONTROL_TABLE = "audit_control"

_COLUMNS = (
    "SELECT column_name FROM information_schema.columns "
    "WHERE table_schema = DATABASE() AND table_name = %s"
)


def control_columns(conn: Connection) -> set[str]:
    """The columns ``audit_control`` has; empty when there is no such table."""
    cur = conn.cursor()
    cur.execute(_COLUMNS, (CONTROL_TABLE,))
    have = {as_text(row[0]) for row in cur.fetchall()}  # type: ignore[index]
    conn.commit()
    return have


def control_rows(
    conn: Connection, kinds: Sequence[str], server: str | None = None, have: set[str] | None = None
) -> list[ControlRow]:
    """The rows of ``kinds`` (of ``server``, default all) in chain order per server.

    ``have``: the table's columns, when the caller asked ``control_columns`` already.
    Order: ``server_uuid``, ``chain_seq`` (where the table has it), then the message's place.
    """
    have = control_columns(conn) if have is None else have
    if not have:
        return []
    names = [c for c in CONTROL_COLUMNS if c in have]
    marks = ", ".join(["%s"] * len(kinds))
    order = "chain_seq, " if "chain_seq" in have else ""
    cur = conn.cursor()
    cur.execute(
        f"SELECT {', '.join(c for c in CONTROL_COLUMNS if c in have)} FROM {CONTROL_TABLE} "
        f"WHERE kind IN ({marks}) AND (%s IS NULL OR server_uuid = %s) "
        f"ORDER BY server_uuid, {order}topic, kafka_partition, kafka_offset",
        (*kinds, server, server),
    )
    rows: list[Any] = list(cur.fetchall())
    conn.commit()
    return [ControlRow(**dict(zip(names, map(_value, row), strict=True))) for row in rows]


def chain_links(
    conn: Connection, kinds: Sequence[str], server: str | None = None, have: set[str] | None = None
) -> list[Link]:
    """The chain links of the rows of ``kinds`` (each in ``auditstream.chain.CONTROL_LINKS``)."""
    return [
        Link.control(
            row.server_uuid,
            row._asdict(),
            chain=row.chain,
            seq=row.chain_seq,
            where=control_where(row),
        )
        for row in control_rows(conn, kinds, server, have)
    ]


def control_where(row: ControlRow) -> str:
    """Where a finding points to: ``table audit_control row (topic/partition@offset)``."""
    return f"table {CONTROL_TABLE} row ({row.topic}/{row.kafka_partition}@{row.kafka_offset})"


def _value(value: object) -> Any:
    return as_text(value) if isinstance(value, bytes | bytearray) else value
