"""End to end: from an event written to the audit log to its row in ``audit_data``.

The benchmark itself is the audited server's audit plugin: it appends events to a live log at a
steady rate (the emulator serves that log), while one producer and one consumer run as they
would in production. Every event's write time is kept by its ``(timestamp, id)``; a poller
finds new rows every 50 ms and stamps them with the poll's start, so a latency is at most
50 ms pessimistic.

The rate climbs in steps. A step *holds* when its lag does not grow - the median latency of its
last quarter is within 0.5 s of its second quarter's - and its events have all arrived 10 s
after it ends; the highest step that holds is the highest steady rate *among the steps tried*.

Trap: the writer and the poller share the 2 cores with everything they measure; a rate the
machine cannot even write is reported as such (``wrote`` in the note), not as pipeline speed.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditstream import mysql
from auditstream.dsn import MySQLDsn
from bench import components
from bench.components import Topics
from bench.measure import Figure, percentile
from bench.run import Run

_HEAD = re.compile(rb'^\{\s*"timestamp"\s*:\s*"[^"]*"\s*,\s*"id"\s*:\s*\d+')
POLL_SECONDS = 0.05


@dataclass
class Step:
    """One rate step's outcome."""

    rate: int
    written: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # in write order
    drained: bool = False

    @property
    def held(self) -> bool:
        """Lag did not grow during the step and everything arrived soon after it."""
        n = len(self.latencies)
        if not self.drained or n < 8:
            return False
        second = self.latencies[n // 4 : n // 2]
        last = self.latencies[3 * n // 4 :]
        return percentile(last, 50) <= percentile(second, 50) + 0.5


class LiveLog:
    """Appends copies of template events to a live audit log, stamped now, and remembers when."""

    def __init__(self, log_dir: Path, templates: Sequence[bytes]) -> None:
        from bench.corpus import BASENAME, SUFFIX
        from emulator.logfile import AuditLogWriter

        self.writer = AuditLogWriter(log_dir, basename=BASENAME, suffix=SUFFIX, flush_each=False)
        self.tails = [t[m.end() :] for t in templates if (m := _HEAD.match(t))]
        if not self.tails:
            raise ValueError("no template event starts with timestamp and id")
        self.written_at: dict[tuple[str, int], float] = {}
        self.count = 0
        self._last: tuple[str, int] = ("", -1)

    def write(self, n: int) -> None:
        """Append ``n`` events now (Oracle ids: a counter within each second)."""
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        last_ts, ident = self._last
        ident = ident + 1 if now == last_ts else 0
        lines = []
        keys = []
        for i in range(n):
            tail = self.tails[(self.count + i) % len(self.tails)]
            raw = b'{ "timestamp": "%s", "id": %d' % (now.encode(), ident + i) + tail
            lines.append((raw, now, ident + i))
            keys.append((now, ident + i))
        self.writer.write_raw_lines(lines)
        stamp = time.perf_counter()
        for key in keys:
            self.written_at[key] = stamp
        self.count += n
        self._last = (now, ident + n - 1)

    def close(self) -> None:
        """Close the live file."""
        self.writer.close()


class Poller(threading.Thread):
    """Finds new rows of one server every 50 ms and records when each was first seen."""

    def __init__(self, archive: MySQLDsn, server_uuid: str) -> None:
        super().__init__(daemon=True)
        self.archive, self.server_uuid = archive, server_uuid
        self.arrived: dict[tuple[str, int], float] = {}
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        """Poll until stopped."""
        try:
            conn = mysql.connect(self.archive, autocommit=True)
            cur = conn.cursor()
            last: tuple[str, int] = ("1970-01-01 00:00:00", -1)
            while not self.stop_event.is_set():
                started = time.perf_counter()
                cur.execute(
                    "SELECT ts, id FROM audit_data WHERE server_uuid = %s AND "
                    "(ts > %s OR (ts = %s AND id > %s)) ORDER BY ts, id",
                    (self.server_uuid, last[0], last[0], last[1]),
                )
                rows: list[Any] = cur.fetchall()
                for ts, ident in rows:
                    key = (ts.strftime("%Y-%m-%d %H:%M:%S"), int(ident))
                    self.arrived.setdefault(key, started)
                    last = key
                time.sleep(max(0.0, POLL_SECONDS - (time.perf_counter() - started)))
            conn.close()
        except BaseException as exc:  # noqa: BLE001 - reported by the stage
            self.error = exc


def run_step(live: LiveLog, poller: Poller, rate: int, seconds: float) -> Step:
    """Write at ``rate`` for ``seconds``, then wait up to 10 s for every row."""
    step = Step(rate)
    first = live.count
    tick = 0.01
    started = time.perf_counter()
    while (elapsed := time.perf_counter() - started) < seconds:
        due = int(rate * elapsed) - (live.count - first)
        if due > 0:
            live.write(due)
        time.sleep(tick)
    step.seconds = time.perf_counter() - started
    step.written = live.count - first
    keys = list(live.written_at)[first:]
    deadline = time.perf_counter() + 10.0
    while time.perf_counter() < deadline and not all(k in poller.arrived for k in keys[-50:]):
        time.sleep(POLL_SECONDS)
    step.drained = all(k in poller.arrived for k in keys)
    step.latencies = [poller.arrived[k] - live.written_at[k] for k in keys if k in poller.arrived]
    return step


def e2e_stage(run: Run) -> None:
    """Latency percentiles per rate step and the highest steady rate, with one of each process."""
    written, _ = run.need_source()
    templates = written.raw_events()[:5000]
    topics = Topics.named(f"bench.e2e.{uuid.uuid4().hex[:8]}")
    live = LiveLog(run.path("corpus/live"), templates)
    server = run.stack.emulator(live.writer.directory)
    bookmarks = run.stack.database("bench_e2e_bm")
    components.producer_setup(bookmarks, run.path("logs/e2e-producer-setup.log"))
    archive = run.stack.database("bench_e2e")
    components.consumer_setup(archive, run.path("logs/e2e-consumer-setup.log"))
    # One event before the processes start, so the producer has a first bookmark to hold.
    live.write(1)
    producer = components.producer(
        server,
        run.stack.bootstrap,
        topics,
        bookmarks,
        run.path("logs/e2e-producer.log"),
        once=False,
    )
    components.wait_topics(run.stack.bootstrap, [topics.events, topics.control])
    consumer = components.consumer(
        archive,
        run.stack.bootstrap,
        topics,
        f"bench-e2e-{uuid.uuid4().hex[:8]}",
        run.path("logs/e2e-consumer.log"),
        once=False,
    )
    poller = Poller(archive, server.server_uuid)
    poller.start()
    steps: list[Step] = []
    try:
        _wait_warm(live, poller, timeout=90)
        for rate in run.sizes.e2e_rates:
            step = run_step(live, poller, rate, run.sizes.e2e_step_seconds)
            steps.append(step)
            if poller.error is not None:
                raise RuntimeError(f"poller failed: {poller.error}")
            if not step.held:
                break
    finally:
        poller.stop_event.set()
        prod = producer.stop()
        cons = consumer.stop()
        poller.join(5)
        live.close()
        run.stack.stop_emulator(server)
    _report(run, steps, prod.peak_rss_mb, cons.peak_rss_mb)


def _wait_warm(live: LiveLog, poller: Poller, timeout: float) -> None:
    """Until the first event is in ``audit_data`` (start-up and group join are not latency)."""
    first = next(iter(live.written_at))
    deadline = time.perf_counter() + timeout
    while first not in poller.arrived:
        if poller.error is not None:
            raise RuntimeError(f"poller failed: {poller.error}")
        if time.perf_counter() > deadline:
            raise RuntimeError(f"the first event did not reach audit_data within {timeout:.0f} s")
        time.sleep(POLL_SECONDS)


def _report(run: Run, steps: Sequence[Step], producer_rss: float, consumer_rss: float) -> None:
    stage = "end to end (log → audit_data)"
    for step in steps:
        if not step.latencies:
            run.add(Figure(stage, f"p99 @ {step.rate:,} ev/s", None, "", note="no row arrived"))
            continue
        ms = [1000 * x for x in step.latencies]
        note = (
            f"p50 {percentile(ms, 50):.0f} ms, p95 {percentile(ms, 95):.0f} ms; "
            f"wrote {step.written / step.seconds:,.0f} ev/s for {step.seconds:.0f} s; "
            + ("held" if step.held else "lag grew" if step.drained else "not drained in 10 s")
        )
        run.add(Figure(stage, f"p99 @ {step.rate:,} ev/s", percentile(ms, 99), "ms", note=note))
    held = [s.rate for s in steps if s.held]
    run.add(
        Figure(
            stage,
            "highest steady rate (of the steps tried)",
            float(max(held)) if held else None,
            "ev/s",
            baseline=run.ref("baseline.rows_s"),
            limit=run.ref("limit.load.rows_s"),
            note=("" if held else "no step held; ")
            + f"steps {', '.join(f'{s.rate:,}' for s in steps)}; one producer, one consumer; "
            f"peak RSS producer {producer_rss:.0f} MB, consumer {consumer_rss:.0f} MB",
        ),
        "e2e.rate",
    )
