"""The demo's source side: a corpus of audit log files, and the filters an operator sets up."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from auditstream import mysql as db
from auditstream.dsn import MySQLDsn
from schemas.mapping import parse_timestamp


def write_corpus(events: int, oversized: int, log_dir: Path) -> tuple[int, int]:
    """Write the corpus through the emulator's writer; return (events, oversized events).

    Generated traffic in rotated, gzipped files, with ``oversized`` events larger than
    the 4 MB read buffer placed among them (the server skips those and warns: gaps).
    """
    from emulator.logfile import AuditLogWriter
    from emulator.traffic import write_events

    log_dir.mkdir(parents=True, exist_ok=True)
    writer = AuditLogWriter(log_dir, rotate_on_size=32 * 1024 * 1024, compress=True)
    try:
        written = 0
        parts = oversized + 1
        for n in range(parts):
            count = events // parts + (events % parts if n == 0 else 0)
            if n:  # between parts, never last: a trailing gap holds a final checkpoint back
                writer.write(_oversized_event(n, writer.last[0] if writer.last else None))
                written += 1
            start = parse_timestamp(writer.last[0]) + timedelta(seconds=1) if writer.last else None
            written += write_events(
                writer, count - (1 if n else 0), seed=7 + n, start=start, compact=True
            )
    finally:
        writer.close()
    return written, oversized


def _oversized_event(n: int, ts: str | None) -> dict[str, object]:
    """A ``general`` event whose query makes it larger than the 4 MB read buffer."""
    query = f"INSERT INTO blobs VALUES ({n}, '" + "x" * (4 * 1024 * 1024 + 512) + "')"
    event: dict[str, object] = {
        "class": "general",
        "event": "status",
        "connection_id": 900 + n,
        "account": {"user": "loader", "host": "batch01"},
        "login": {"user": "loader", "os": "", "ip": "10.0.0.9", "proxy": ""},
        "general_data": {"command": "Query", "sql_command": "insert", "query": query, "status": 0},
    }
    if ts:
        event["timestamp"] = ts
    return event


def apply_filters(admin: MySQLDsn) -> None:
    """The operator's filter setup (sql/source/filters.sql), with the demo's archiver name."""
    import sql

    conn = db.connect(admin)
    try:
        cur = conn.cursor()
        for statement in sql.statements("source/filters"):
            cur.execute(statement.replace("audituser@%", "archiver@%"))
            cur.fetchall()
    finally:
        conn.close()
