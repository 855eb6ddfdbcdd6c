"""``python -m bench.soak --minutes 30 --rate 2000 [--consumers 2] [--sample-seconds 10]``.

The demo's pipeline (emulated source, one producer, a consumer group) under steady generated
load for a configurable time, sampled every few seconds; then the load stops, the archive
catches up and ``reconcile`` compares source, topics and archive. Exit 0 only when clean.

Steps:

1. Start mariadbd, Tansu and an emulated source serving a live log (``bench.infra.Stack``).
2. Start the producer and the consumers (``bench.components``) with ``/metrics`` ports.
3. Write ``rate`` events/s into the live log (``bench.latency.LiveLog``) for ``minutes``,
   recording a ``Sample`` every ``sample_seconds``.
4. Stop writing; wait until archived == written (no oversized events are written: no gaps).
5. Run ``reconcile`` (source, topics, archive) and stop every process.

Trap: the writer, the sampler and every component share the machine's cores; a rate the
machine cannot write shows as ``written`` falling behind ``rate * elapsed``, not as lag.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from auditstream import mysql
from auditstream.dsn import MySQLDsn
from auditstream.embedded import free_port
from bench import components
from bench.components import Topics
from bench.corpus import BASENAME, SUFFIX, read_raw
from bench.infra import Stack
from bench.latency import LiveLog
from bench.measure import Child


@dataclass
class Sample:
    """One row of the soak table (RSS in MB and open fds per process name)."""

    elapsed: float
    written: int
    archived: int
    bookmark_lag_s: float | None
    consumer_lag: float | None
    rss_mb: dict[str, float] = field(default_factory=dict)
    fds: dict[str, int] = field(default_factory=dict)


def proc_usage(pid: int) -> tuple[float, int]:
    """(VmRSS in MB, open file descriptors) of ``pid`` from /proc; (0, 0) once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        kb = next(int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmRSS:"))
        return kb / 1024, len(list(Path(f"/proc/{pid}/fd").iterdir()))
    except (OSError, StopIteration):
        return 0.0, 0


def metric_sum(port: int, name: str) -> float | None:
    """The sum of every series of gauge ``name`` on ``127.0.0.1:port/metrics`` (None: absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    values = [
        s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name == name
    ]
    return sum(values) if values else None


def archived(dsn: MySQLDsn) -> int:
    """Rows in ``audit_data`` plus the rotated tables the ledger lists."""
    conn = mysql.connect(dsn, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*) FROM audit_data")
        row = mysql.fetchone(cur)
        total = int(row[0]) if row else 0
        cur.execute("SELECT COALESCE(SUM(row_count), 0) FROM audit_rotation")
        row = mysql.fetchone(cur)
        return total + (int(row[0]) if row else 0)
    finally:
        conn.close()


def templates(workdir: Path, count: int = 2000) -> list[bytes]:
    """Generated events' bytes, as ``LiveLog`` copies them (written once, read back)."""
    from emulator.logfile import AuditLogWriter
    from emulator.traffic import write_events

    writer = AuditLogWriter(workdir, basename=BASENAME, suffix=SUFFIX)
    try:
        write_events(writer, count, seed=11, compact=True, with_startup=False)
    finally:
        writer.close()
    return read_raw(workdir)


def soak(args: argparse.Namespace, workdir: Path) -> tuple[list[Sample], bool, str]:
    """Steps 1-5; returns (samples, reconcile clean, reconcile summary)."""
    from ops.reconcile.compare import Stores, reconcile
    from ops.reconcile.keys import KeyRange

    samples: list[Sample] = []
    # Step 1
    stack = Stack.start(workdir)
    children: dict[str, Child] = {}
    live: LiveLog | None = None
    try:
        (workdir / "tpl").mkdir()
        live = LiveLog(workdir / "live", templates(workdir / "tpl"))
        server = stack.emulator(live.writer.directory)
        children["emulator"] = server.child
        topics = Topics.named(f"soak.{uuid.uuid4().hex[:8]}")
        bookmarks = stack.database("soak_bm")
        components.producer_setup(bookmarks, workdir / "producer-setup.log").ok("producer setup")
        archive = stack.database("soak")
        components.consumer_setup(archive, workdir / "consumer-setup.log").ok("consumer setup")
        live.write(1)
        # Step 2
        ports = {"producer": free_port()}
        children["producer"] = components.producer(
            server,
            stack.bootstrap,
            topics,
            bookmarks,
            workdir / "producer.log",
            once=False,
            extra=("--metrics-port", str(ports["producer"])),
        )
        components.wait_topics(stack.bootstrap, [topics.events, topics.control])
        group = f"soak-{uuid.uuid4().hex[:8]}"
        for n in range(args.consumers):
            name = f"consumer-{n + 1}"
            ports[name] = free_port()
            children[name] = components.consumer(
                archive,
                stack.bootstrap,
                topics,
                group,
                workdir / f"{name}.log",
                once=False,
                extra=("--metrics-port", str(ports[name])),
            )

        def sample(started: float) -> Sample:
            assert live is not None  # noqa: S101 - set above
            row = Sample(
                round(time.monotonic() - started, 1),
                live.count,
                archived(archive),
                metric_sum(ports["producer"], "auditstream_producer_bookmark_lag_seconds"),
                None,
            )
            lags = [
                metric_sum(p, "auditstream_consumer_lag_messages")
                for n, p in ports.items()
                if n != "producer"
            ]
            seen = [x for x in lags if x is not None]
            row.consumer_lag = sum(seen) if seen else None
            for name, ch in children.items():
                if ch.proc is not None:
                    row.rss_mb[name], row.fds[name] = proc_usage(ch.proc.pid)
            print(format_row(row), flush=True)
            return row

        # Step 3
        started = time.monotonic()
        next_sample = started
        while (elapsed := time.monotonic() - started) < args.minutes * 60:
            due = int(args.rate * elapsed) + 1 - live.count
            if due > 0:
                live.write(due)
            if time.monotonic() >= next_sample:
                samples.append(sample(started))
                next_sample += args.sample_seconds
            dead = [n for n, ch in children.items() if not ch.alive()]
            if dead:
                raise RuntimeError(f"{dead} exited: {children[dead[0]].tail()}")
            time.sleep(0.01)
        # Step 4
        deadline = time.monotonic() + args.drain_timeout
        while archived(archive) < live.count and time.monotonic() < deadline:
            time.sleep(1)
        samples.append(sample(started))
        # Step 5
        report = reconcile(
            Stores(
                source=server.dsn,
                kafka={"bootstrap.servers": stack.bootstrap},
                topic=topics.events,
                control_topic=topics.control,
                dlq_topic=topics.dlq,
                archive=archive,
                work_dir=workdir,
                idle_timeout=10.0,
            ),
            KeyRange(server_uuid=server.server_uuid),
        )
        summary = f"reconcile keys {report.keys}, counts {dict(report.counts)}"
        return samples, report.clean and samples[-1].archived == live.count, summary
    finally:
        for name, ch in children.items():
            if name != "emulator" and ch.proc is not None:
                ch.stop()
        if live is not None:
            live.close()
        stack.close()


def format_row(s: Sample) -> str:
    """One sample as a fixed-width line."""
    per = " ".join(f"{n}={s.rss_mb.get(n, 0):.0f}MB/{s.fds.get(n, 0)}fd" for n in s.rss_mb)
    lag = "-" if s.bookmark_lag_s is None else f"{s.bookmark_lag_s:.1f}"
    clag = "-" if s.consumer_lag is None else f"{s.consumer_lag:.0f}"
    return f"{s.elapsed:8.1f} {s.written:10,} {s.archived:10,} {lag:>8} {clag:>8}  {per}"


def main(argv: list[str] | None = None) -> int:
    """Parse, soak, print; 0 only when reconcile is clean."""
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=int, default=2000, help="events written per second")
    parser.add_argument("--consumers", type=int, default=2)
    parser.add_argument("--sample-seconds", type=float, default=10.0)
    parser.add_argument("--drain-timeout", type=float, default=300.0)
    parser.add_argument("--json", type=Path, help="also write the samples as JSON here")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    print(
        f"{'elapsed':>8} {'written':>10} {'archived':>10} {'bm lag s':>8} {'cons lag':>8}  rss/fds"
    )
    with tempfile.TemporaryDirectory(prefix="auditstream-soak-") as tmp:
        samples, clean, summary = soak(args, Path(tmp))
    print(summary)
    print("reconcile: CLEAN" if clean else "reconcile: NOT CLEAN")
    if args.json:
        args.json.write_text(
            json.dumps({"clean": clean, "samples": [asdict(s) for s in samples]}, indent=1)
        )
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
