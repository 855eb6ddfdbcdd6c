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
   With ``--seal`` (``ops.demo.seal``): the producer signs checkpoints; dumps and
   checkpoints go to the OCI test server under a retention rule; ``verify`` checks them.
9. Print the counts; exit 0 only when every stage agrees.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from auditstream.dsn import MySQLDsn
from auditstream.embedded import PrivateMariaDB, TansuBroker
from auditstream.embedded_kafka import KafkaBroker
from auditstream.errors import AuditStreamError
from auditstream.ports import free_port
from auditstream.process import log_tail as tail
from auditstream.settings import ServiceSettings, load
from ops.demo import seal as demo_seal
from ops.demo.children import child, run_child
from ops.demo.corpus import apply_filters, write_corpus
from ops.demo.counts import count_archived, count_rows, count_topic, count_verified, probe
from ops.demo.summary import Summary, print_summary, say

SERVER_UUID = "6c1f8b5e-0d1c-11ef-9f1a-0242ac120002"


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
        "server under a retention rule, verify with the public key (ops.demo.seal)",
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
        summary.generated, summary.oversized = write_corpus(
            settings.events, settings.oversized, log_dir
        )

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
