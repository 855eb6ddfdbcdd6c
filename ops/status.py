"""``auditstream status``: where every server, partition and rotated table stands.

Reads only: the bookmark store (``audit_config``), the archive (``audit_high_water``,
``audit_offsets``, ``audit_control``, ``audit_rotation``, ``audit_rotation_period``), optionally
the audited server (its newest event through ``audit_log_read_bookmark()``) and the broker
(partition high watermarks).

Trap: the last checkpoint shown is what the archive holds, its signature unchecked; only
``auditstream verify --seal-public-key`` checks signatures and the chain they sign.

Trap: on the Tansu test broker the high watermark from ``get_watermark_offsets`` is miscounted,
so partition lag shown here is only right on Apache Kafka; the consumer's own
``auditstream_consumer_lag_messages`` metric uses fetch high-water marks and is right on both.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from auditstream import mysql as db
from auditstream.connections import ArchiveDb, BookmarkDb, SourceDb
from auditstream.dsn import DsnText, MySQLDsn
from auditstream.errors import ArchiveError
from auditstream.kafkaauth import KafkaAuthSettings
from auditstream.kafkalog import LOGGER
from auditstream.settings import load

log = logging.getLogger(__name__)


class StatusSettings(ArchiveDb, BookmarkDb, SourceDb, KafkaAuthSettings):
    """Where to look."""

    archive_dsn: DsnText = Field(description="mysql://user@host:port/audit_archive")
    bookmark_dsn: DsnText | None = Field(None, description="bookmark store (default: the archive)")
    source_dsn: DsnText | None = Field(None, description="an audited server, for its newest event")
    bootstrap_servers: str | None = Field(None, description="Kafka, for partition high watermarks")
    topic: str = "mysql.audit.events"
    json_output: bool = Field(False, alias="json", description="print JSON for scripts")


def main(argv: Sequence[str]) -> int:
    """Entry point of ``auditstream status``."""
    settings = load(StatusSettings, argv, prog="auditstream status", section="status")
    archive = MySQLDsn.parse(settings.archive_dsn).with_password(
        settings.archive_password, settings.archive_password_file
    )
    bookmarks = settings.bookmark_or_none() or archive
    source = settings.source_or_none()
    report = collect(
        archive,
        bookmarks,
        source,
        settings.bootstrap_servers,
        settings.topic,
        kafka_auth=settings.kafka_auth(),
    )
    if settings.json_output:
        print(json.dumps(report, indent=2, default=str))
    else:
        render(report)
    return 0


def collect(
    archive: MySQLDsn,
    bookmarks: MySQLDsn,
    source: MySQLDsn | None,
    bootstrap: str | None,
    topic: str,
    kafka_auth: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Gather the report as plain data (what ``--json`` prints)."""
    servers: dict[str, dict[str, Any]] = {}
    for uuid, ts, ident, updated in _query(
        bookmarks, "SELECT server_uuid, ts, id, updated_at FROM audit_config"
    ):
        servers.setdefault(uuid, {})["bookmark"] = {"ts": ts, "id": ident, "updated_at": updated}
    for uuid, ts, ident in _query(archive, "SELECT server_uuid, ts, id FROM audit_high_water"):
        servers.setdefault(uuid, {})["archived_up_to"] = {"ts": ts, "id": ident}
    for uuid, at, lag in _query(
        archive,
        "SELECT c.server_uuid, c.at, c.lag_seconds FROM audit_control c JOIN "
        "(SELECT server_uuid, MAX(at) AS at FROM audit_control WHERE kind = 'heartbeat' "
        "GROUP BY server_uuid) h ON h.server_uuid = c.server_uuid AND h.at = c.at "
        "WHERE c.kind = 'heartbeat'",
    ):
        servers.setdefault(uuid, {})["last_heartbeat"] = {"at": at, "lag_seconds": lag}
    for uuid, gaps in _query(
        archive, "SELECT server_uuid, COUNT(*) FROM audit_control WHERE kind = 'gap' GROUP BY 1"
    ):
        servers.setdefault(uuid, {})["gaps"] = gaps
    for uuid, seq, signed_seq, at, key_id in _query(
        archive,
        "SELECT c.server_uuid, c.checkpoint_seq, c.signed_seq, c.at, c.key_id FROM audit_control c "
        "JOIN (SELECT server_uuid, MAX(checkpoint_seq) AS seq FROM audit_control "
        "WHERE kind = 'checkpoint' GROUP BY server_uuid) m "
        "ON m.server_uuid = c.server_uuid AND m.seq = c.checkpoint_seq "
        "WHERE c.kind = 'checkpoint' ORDER BY c.kafka_offset",
    ):  # a re-sent checkpoint is the same checkpoint: the last row wins
        servers.setdefault(uuid, {})["last_checkpoint"] = {
            "checkpoint_seq": seq, "signed_seq": signed_seq, "at": at, "key_id": key_id,
        }  # fmt: skip
    if source is not None:
        _newest_event(source, servers)

    partitions = [
        {"topic": t, "partition": p, "archived_next_offset": o}
        for t, p, o in _query(
            archive,
            "SELECT topic, kafka_partition, next_offset FROM audit_offsets ORDER BY 1, 2",
        )
        if t == topic
    ]
    if bootstrap:
        _high_watermarks(bootstrap, topic, partitions, kafka_auth or {})

    rotation: dict[str, Any] = {"by_state": {}, "last_rotated_at": None, "pending": [], "stuck": []}
    rotation["live_period_start"] = None
    for (period_start,) in _query(
        archive, "SELECT period_start FROM audit_rotation_period WHERE id = 1"
    ):
        rotation["live_period_start"] = period_start
    for name, state, stuck, rotated_at, error in _query(
        archive,
        "SELECT table_name, state, stuck, rotated_at, last_error FROM audit_rotation "
        "ORDER BY rotated_at",
    ):
        rotation["by_state"][state] = rotation["by_state"].get(state, 0) + 1
        rotation["last_rotated_at"] = rotated_at
        if state not in ("verified", "dropped", "missing"):
            rotation["pending"].append(name)
        if stuck:
            rotation["stuck"].append({"table": name, "error": error})
    return {"servers": servers, "partitions": partitions, "rotation": rotation}


def _query(dsn: MySQLDsn, statement: str) -> list[tuple[Any, ...]]:
    try:
        conn = db.connect(dsn)
    except db.Error as exc:
        raise ArchiveError(f"cannot connect: {exc}", dsn=str(dsn)) from exc
    try:
        cur = conn.cursor()
        cur.execute(statement)
        return db.fetchall(cur)
    except db.Error as exc:
        if exc.errno in (1146, 1054):  # no such table or column: not set up (or not upgraded) yet
            return []
        raise ArchiveError(f"status query failed: {exc}", dsn=str(dsn)) from exc
    finally:
        conn.close()


def _newest_event(source: MySQLDsn, servers: dict[str, dict[str, Any]]) -> None:
    conn = db.connect(source)
    try:
        cur = conn.cursor()
        cur.execute("SELECT @@server_uuid, audit_log_read_bookmark()")
        row = db.fetchone(cur)
    finally:
        conn.close()
    if row is None or row[1] is None:
        return
    uuid, text = str(row[0]), row[1]
    newest = json.loads(text.decode() if isinstance(text, bytes | bytearray) else str(text))
    entry = servers.setdefault(uuid, {})
    entry["newest_event"] = newest
    bookmark = entry.get("bookmark")
    if bookmark and isinstance(bookmark["ts"], datetime):
        newest_ts = datetime.strptime(newest["timestamp"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        entry["behind_seconds"] = (newest_ts - bookmark["ts"].replace(tzinfo=UTC)).total_seconds()


def _high_watermarks(
    bootstrap: str, topic: str, partitions: list[dict[str, Any]], auth: dict[str, str]
) -> None:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "auditstream-status",
            "enable.auto.commit": False,
            "logger": LOGGER,
            **auth,
        }
    )
    try:
        for entry in partitions:
            _, high = consumer.get_watermark_offsets(
                TopicPartition(topic, entry["partition"]), timeout=5
            )
            entry["high_watermark"] = high
            if entry["archived_next_offset"] is not None:
                entry["lag"] = max(0, high - entry["archived_next_offset"])
    finally:
        consumer.close()


def render(report: dict[str, Any]) -> None:
    """Print the report as tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    servers = Table(title="servers")
    columns = ("server_uuid", "bookmark", "behind (s)", "archived up to", "heartbeat", "gaps",
               "last checkpoint")  # fmt: skip
    for column in columns:
        servers.add_column(column, no_wrap=column == "server_uuid")
    for uuid, s in sorted(report["servers"].items()):
        bm, arch, hb = s.get("bookmark"), s.get("archived_up_to"), s.get("last_heartbeat")
        cp = s.get("last_checkpoint")
        servers.add_row(
            uuid,
            f"{bm['ts']} #{bm['id']}" if bm else "-",
            f"{s['behind_seconds']:.0f}" if "behind_seconds" in s else "-",
            f"{arch['ts']} #{arch['id']}" if arch else "-",
            f"{hb['at']} (lag {hb['lag_seconds']})" if hb else "-",
            str(s.get("gaps", 0)),
            f"#{cp['checkpoint_seq']}: link {cp['signed_seq']}, {cp['at']}, key {cp['key_id']}"
            if cp
            else "-",
        )
    console.print(servers)
    parts = Table(title="partitions")
    for column in ("topic", "partition", "archived next offset", "high watermark", "lag"):
        parts.add_column(column)
    for p in report["partitions"]:
        parts.add_row(
            p["topic"],
            str(p["partition"]),
            str(p["archived_next_offset"]),
            str(p.get("high_watermark", "-")),
            str(p.get("lag", "-")),
        )
    console.print(parts)
    rot = report["rotation"]
    console.print(
        f"rotation: live audit_data since {rot['live_period_start'] or '-'}; "
        f"last {rot['last_rotated_at'] or 'never'}; by state {rot['by_state'] or '{}'}; "
        f"pending uploads {len(rot['pending'])}; stuck {len(rot['stuck'])}"
    )
    for stuck in rot["stuck"]:
        console.print(f"  [red]stuck[/] {stuck['table']}: {stuck['error']}")
