"""``auditstream demo``: the whole mission end to end on embedded components, then a summary.

Steps (each one a real component, started here and stopped at the end whatever happens):

1. A private MariaDB (archive database, and backend of the emulated source).
2. A corpus of generated audit events written as the plugin writes them: rotated and gzipped
   files, a few events larger than the 4 MB read buffer.
3. The emulated MySQL Enterprise source over the MySQL protocol, with the filters an operator
   sets up (``log_all`` for everyone, ``log_nothing`` for the archiver).
4. The Kafka broker: Tansu (fastest start), or Apache Kafka with ``--broker kafka``.
5. ``setup`` of the bookmark store and the archive tables.
6. Two consumers (a group), then one producer with ``--once`` draining the whole log.
7. Wait until the archive holds every published event; read ``/metrics`` and ``/readyz``.
8. Stop the consumers, force a rotation, dump and upload to a ``file://`` target, verify.
   With ``--seal`` (``ops.demo_seal``): the producer signs checkpoints; dumps and
   checkpoints go to the OCI test server under a retention rule; ``verify`` checks them.
9. Print the counts; exit 0 only when every stage agrees.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from auditstream import mysql as db
from auditstream.dsn import MySQLDsn
from auditstream.embedded import PrivateMariaDB, TansuBroker
from auditstream.embedded_kafka import KafkaBroker
from auditstream.errors import AuditStreamError
from auditstream.ports import free_port
from auditstream.process import log_tail as tail
from auditstream.process import run_logged, running
from auditstream.settings import ServiceSettings, load
from ops import demo_seal
from ops.verify.tables import event_tables
from schemas.mapping import parse_timestamp

TOPIC = "mysql.audit.events"
SERVER_UUID = "6c1f8b5e-0d1c-11ef-9f1a-0242ac120002"
CONTROL_TOPIC = "mysql.audit.control"


class DemoSettings(ServiceSettings):
    """What the demo runs on."""

    events: int = Field(default=300_000, ge=1_000, description="audit events to generate")
    oversized: int = Field(default=3, ge=0, description="events larger than the 4 MB read buffer")
    consumers: int = Field(default=2, ge=1, le=6)
    workdir: Path | None = Field(default=None, description="keep everything here (default: temp)")
    keep: bool = Field(default=False, description="keep the work directory afterwards")
    timeout: float = Field(default=600.0, gt=0, description="seconds before giving up")
    broker: Literal["tansu", "kafka"] = Field(
        default="tansu", description="embedded broker: tansu (fast start) or kafka (Apache Kafka)"
    )
    seal: bool = Field(
        default=False,
        description="sealed evidence: signed checkpoints, dumps and checkpoints to the OCI test "
        "server under a retention rule, verify with the public key (ops.demo_seal)",
    )


@dataclass
class Summary:
    """The counts every stage reports; the demo passes when they agree."""

    generated: int = 0
    oversized: int = 0
    published: int = 0
    gaps: int = 0
    #: every control event in the control topic (gaps, checkpoints, skips, heartbeats)
    controls: int = 0
    archived: int = 0
    controls_archived: int = 0
    in_rotated_tables: int = 0
    in_verified_objects: int = 0
    objects: list[str] = field(default_factory=list)
    metrics_seen: bool = False
    ready_seen: bool = False
    elapsed: float = 0.0
    #: --seal: verify passed with the signed checkpoints (None: not asked)
    sealed: bool | None = None

    def ok(self) -> bool:
        """True when nothing was lost and nothing was duplicated, stage by stage."""
        return (
            self.published + self.gaps == self.generated
            and self.gaps >= self.oversized
            and self.archived == self.published
            and self.controls_archived == self.controls
            and self.in_rotated_tables == self.archived
            and self.in_verified_objects == self.in_rotated_tables
            and self.sealed is not False
        )


def main(argv: Sequence[str]) -> int:
    """Entry point of ``auditstream demo``."""
    settings = load(DemoSettings, argv, prog="auditstream demo", section="demo")
    started = time.monotonic()
    workdir = settings.workdir or Path(tempfile.mkdtemp(prefix="auditstream-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        summary = run(settings, workdir)
    finally:
        if not settings.keep and settings.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    summary.elapsed = time.monotonic() - started
    print_summary(summary, workdir if settings.keep else None)
    return 0 if summary.ok() else 1


def run(settings: DemoSettings, workdir: Path) -> Summary:
    """Run steps 1-8 and return the counts."""
    summary = Summary()
    with ExitStack() as stack:
        # Step 1
        say("starting a private MariaDB")
        mariadb = stack.enter_context(PrivateMariaDB(base=workdir / "mariadb").start())
        archive = mariadb.dsn.with_database("audit_archive")

        # Step 2
        log_dir = workdir / "audit-log"
        say(f"writing {settings.events:,} audit events (rotated, gzipped, oversized)")
        summary.generated, summary.oversized = write_corpus(settings, log_dir)

        # Step 3
        archiver_pw = secrets.token_urlsafe(16)
        admin_pw = secrets.token_urlsafe(16)
        source_port = free_port()
        say("starting the emulated MySQL Enterprise source")
        stack.enter_context(
            child(
                "source",
                workdir,
                "emulator",
                f"--port={source_port}",
                f"--log-dir={log_dir}",
                f"--server-uuid={SERVER_UUID}",
                f"--backend-dsn={mariadb.dsn.url(reveal=True)}",
                f"--user=archiver:{archiver_pw}:AUDIT_ADMIN",
                f"--user=admin:{admin_pw}:ALL",
                "--log-level=WARNING",
                port=source_port,
            )
        )
        source = MySQLDsn(user="archiver", host="127.0.0.1", port=source_port)
        apply_filters(
            MySQLDsn(user="admin", password=SecretStr(admin_pw), host="127.0.0.1", port=source_port)
        )

        # Step 4
        broker: TansuBroker | KafkaBroker
        if settings.broker == "kafka":
            say("starting Apache Kafka (one KRaft node)")
            broker = KafkaBroker(workdir=workdir / "kafka")
        else:
            say("starting the Tansu Kafka broker")
            (workdir / "tansu").mkdir(exist_ok=True)
            broker = TansuBroker(workdir=workdir / "tansu")
        broker.start()
        stack.callback(broker.stop)

        sealing = demo_seal.start(stack, workdir) if settings.seal else None
        env = {
            "AUDITSTREAM_SOURCE_PASSWORD": archiver_pw,
            "AUDITSTREAM_BOOTSTRAP_SERVERS": broker.bootstrap,
        }
        # Step 5
        say("setting up the bookmark store and the archive tables")
        run_child(workdir, env, "producer", "setup", f"--source-dsn={source}")
        run_child(workdir, env, "consumer", "setup", f"--archive-dsn={archive}")

        # Step 6
        with ExitStack() as consumers:
            for n in range(settings.consumers):
                consumers.enter_context(
                    child(
                        f"consumer-{n + 1}",
                        workdir,
                        "consumer",
                        f"--archive-dsn={archive}",
                        env=env,
                    )
                )
            say(f"{settings.consumers} consumers started; draining the log with one producer")
            metrics_port = free_port()
            with child(
                "producer",
                workdir,
                "producer",
                f"--source-dsn={source}",
                "--start-from=earliest",
                "--once",
                f"--metrics-port={metrics_port}",
                *(sealing.producer_args() if sealing else []),
                env=env,
            ) as producer:
                deadline = time.monotonic() + settings.timeout
                while producer.poll() is None and time.monotonic() < deadline:
                    summary.metrics_seen = summary.metrics_seen or probe(metrics_port, "/metrics")
                    summary.ready_seen = summary.ready_seen or probe(metrics_port, "/readyz")
                    time.sleep(0.2)
                if producer.poll() != 0:
                    log_tail = tail(workdir / "producer.log")
                    raise AuditStreamError(f"the producer failed ({producer.poll()}):\n{log_tail}")
            summary.published, summary.gaps, summary.controls = count_topic(broker.bootstrap)

            # Step 7: the control events too. The consumers stop after this, and a gap or a
            # checkpoint still in the control topic would make verify report a missing link.
            say(f"{summary.published:,} events published; waiting for the archive")
            deadline = time.monotonic() + settings.timeout
            while time.monotonic() < deadline:
                summary.archived = count_archived(archive)
                summary.controls_archived = count_rows(archive, "audit_control")
                if (
                    summary.archived >= summary.published
                    and summary.controls_archived >= summary.controls
                ):
                    break
                time.sleep(0.5)

        # Step 8: the consumers are stopped; rotate, dump, upload, verify.
        target = f"file://{workdir / 'objects'}"
        say("forcing a rotation, then dump + upload + verify to " + ("OCI" if sealing else target))
        run_child(workdir, {}, "consumer", "rotate", f"--archive-dsn={archive}", "--force")
        where = sealing.upload_args() if sealing else [f"--target={target}"]
        run_child(
            workdir,
            {},
            "consumer",
            "upload",
            f"--archive-dsn={archive}",
            *where,
            "--method=dump",
            f"--staging-dir={workdir / 'staging'}",
        )
        if sealing is not None:
            say("verifying the archive and the dumps against the signed checkpoints")
            verify = ["verify", f"--archive-dsn={archive}", *sealing.verify_args()]
            try:
                run_child(workdir, {}, *verify)
                summary.sealed = "last checkpoint" in tail(workdir / "verify-run.log")
            except AuditStreamError as exc:
                say(str(exc))
                summary.sealed = False
        summary.in_rotated_tables, summary.in_verified_objects = count_verified(archive)
        summary.objects = (
            sorted(
                str(p.relative_to(workdir / "objects"))
                for p in (workdir / "objects").rglob("manifest.json")
            )
            if sealing is None
            else ["oci://audit@testns/dumps, oci://audit@testns/seals"]
        )
    return summary


# --------------------------------------------------------------------------- steps


def write_corpus(settings: DemoSettings, log_dir: Path) -> tuple[int, int]:
    """Write the corpus through the emulator's writer; return (events, oversized events).

    Generated traffic in rotated, gzipped files, with ``settings.oversized`` events larger than
    the 4 MB read buffer placed among them (the server skips those and warns: gaps).
    """
    from emulator.logfile import AuditLogWriter
    from emulator.traffic import write_events

    log_dir.mkdir(parents=True, exist_ok=True)
    writer = AuditLogWriter(log_dir, rotate_on_size=32 * 1024 * 1024, compress=True)
    try:
        written = 0
        parts = settings.oversized + 1
        for n in range(parts):
            count = settings.events // parts + (settings.events % parts if n == 0 else 0)
            if n:  # between parts, never last: a trailing gap holds a final checkpoint back
                writer.write(_oversized_event(n, writer.last[0] if writer.last else None))
                written += 1
            start = parse_timestamp(writer.last[0]) + timedelta(seconds=1) if writer.last else None
            written += write_events(
                writer, count - (1 if n else 0), seed=7 + n, start=start, compact=True
            )
    finally:
        writer.close()
    return written, settings.oversized


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
    """Rows in ``table`` (a constant name), or 0 while it does not exist yet."""
    try:
        conn = db.connect(dsn)
    except db.Error:
        return 0
    try:
        cur = conn.cursor()
        cur.execute(f"SELECT COUNT(*) FROM `{table}`")
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


# --------------------------------------------------------------------------- processes


def child(
    name: str,
    workdir: Path,
    *args: str,
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """Run ``auditstream <args>`` in the background (until it serves on ``port``, if given).

    Stopped on leaving the ``with`` block: SIGTERM, then SIGKILL after 30 s.
    """
    log = workdir / f"{name}.log"
    return running(_cli(*args), log, port=port, what=name, env={**os.environ, **(env or {})})


def run_child(workdir: Path, env: dict[str, str], *args: str, timeout: float = 300.0) -> None:
    """Run ``auditstream <args>`` to completion; raise with its log tail when it fails."""
    log_path = (
        workdir
        / f"{args[0]}-{args[1] if len(args) > 1 and not args[1].startswith('-') else 'run'}.log"
    )
    if run_logged(_cli(*args), log_path, env={**os.environ, **env}, timeout=timeout) != 0:
        raise AuditStreamError(f"'auditstream {' '.join(args[:2])}' failed:\n{tail(log_path)}")


def _cli(*args: str) -> list[str]:
    """``auditstream <args>`` with this interpreter (the demo's children)."""
    return [sys.executable, "-m", "ops.cli", *args]


def say(text: str) -> None:
    """One progress line."""
    print(f"demo: {text}", flush=True)


def print_summary(summary: Summary, kept: Path | None) -> None:
    """The counts as a table (rich)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="mysql-audit-stream demo")
    table.add_column("stage")
    table.add_column("events", justify="right")
    rows = [
        ("generated (audit log files)", summary.generated),
        ("  larger than the 4 MB read buffer", summary.oversized),
        ("published to Kafka", summary.published),
        ("gaps reported (control topic)", summary.gaps),
        ("archived (audit_data)", summary.archived),
        ("in rotated tables", summary.in_rotated_tables),
        ("in verified objects", summary.in_verified_objects),
    ]
    for label, value in rows:
        table.add_row(label, f"{value:,}")
    table.add_row(
        "control events: topic / archived",
        f"{summary.controls:,} / {summary.controls_archived:,}",
    )
    table.add_row("objects (manifests)", ", ".join(summary.objects) or "-")
    table.add_row("/metrics and /readyz answered", f"{summary.metrics_seen} / {summary.ready_seen}")
    if summary.sealed is not None:
        table.add_row(
            "verify with the signed checkpoints", "passed" if summary.sealed else "FAILED"
        )
    table.add_row("elapsed", f"{summary.elapsed:.1f} s")
    console = Console()
    console.print(table)
    console.print(
        "[bold green]OK[/]: every stage agrees" if summary.ok() else "[bold red]MISMATCH[/]"
    )
    if kept:
        console.print(f"work directory kept: {kept}")
