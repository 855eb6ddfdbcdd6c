"""How the demo counts each stage: the topics, the archive's tables, the rotation ledger.

Trap: audit events count once per event (at-least-once may re-send a batch), control events
once per message, as ``audit_control`` keeps them (keyed by topic, partition and offset).
"""

from __future__ import annotations

import secrets
import time
import urllib.request

from auditstream import mysql as db
from auditstream import sqlident
from auditstream.dsn import MySQLDsn
from ops.verify.tables import event_tables

TOPIC = "mysql.audit.events"
CONTROL_TOPIC = "mysql.audit.control"


def count_topic(bootstrap: str) -> tuple[int, int, int]:
    """(audit events, gap control events, all control events) in the topics, from the start.

    Audit events count once per event (a re-sent batch is not two events); control events once
    per message, as ``audit_control`` keeps them (keyed by topic, partition and offset).
    """
    from confluent_kafka import Consumer

    from auditstream.kafka import check
    from schemas.codec import decode

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"demo-count-{secrets.token_hex(4)}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "fetch.max.bytes": 64 * 1024 * 1024,
            "max.partition.fetch.bytes": 16 * 1024 * 1024,
        }
    )
    consumer.subscribe([TOPIC, CONTROL_TOPIC])
    events = gaps = controls = 0
    seen: set[tuple[str, int, int]] = set()
    quiet_since = time.monotonic()
    try:
        while time.monotonic() - quiet_since < 5.0:
            for raw in consumer.consume(10_000, 0.5):
                msg = check(raw)
                if msg is None:
                    continue
                quiet_since = time.monotonic()
                name, record = decode(msg.value(), msg.topic() or "")
                if name == "control_event":
                    gaps += record["kind"] == "gap"
                    controls += 1
                    continue
                key = (record["server_uuid"], int(record["timestamp"].timestamp()), record["id"])
                if key not in seen:  # at-least-once: a re-sent batch is not two events
                    seen.add(key)
                    events += 1
    finally:
        consumer.close()
    return events, gaps, controls


def count_rows(dsn: MySQLDsn, table: str) -> int:
    """Rows in ``table`` (checked by ``sqlident``), or 0 while it does not exist yet."""
    try:
        conn = db.connect(dsn)
    except db.Error:
        return 0
    try:
        cur = conn.cursor()
        cur.execute(f"SELECT COUNT(*) FROM {sqlident.ident(table)}")
        row = db.fetchone(cur)
        return int(row[0]) if row else 0
    except db.Error:
        return 0
    finally:
        conn.close()


def count_archived(dsn: MySQLDsn) -> int:
    """Rows in ``audit_data`` and every rotated table (a scheduled rotation may fall mid-run)."""
    try:
        conn = db.connect(dsn)
    except db.Error:
        return 0
    try:
        return sum(count_rows(dsn, table) for table in event_tables(conn))
    except db.Error:
        return 0
    finally:
        conn.close()


def count_verified(dsn: MySQLDsn) -> tuple[int, int]:
    """(rows in rotated tables, rows the ledger marks verified in the target)."""
    conn = db.connect(dsn)
    try:
        cur = conn.cursor()
        cur.execute("SELECT table_name, row_count, state FROM audit_rotation")
        rows = [(str(r[0]), int(r[1] or 0), str(r[2])) for r in db.fetchall(cur)]
    finally:
        conn.close()
    rotated = sum(count for _, count, _ in rows)
    verified = sum(count for _, count, state in rows if state in ("verified", "dropped"))
    return rotated, verified


def probe(port: int, path: str) -> bool:
    """True when ``http://127.0.0.1:port/path`` answers 200."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False
