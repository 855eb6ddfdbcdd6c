"""End to end: from an event written to the audit log to its row in ``audit_data``.

The benchmark itself is the audited server's audit plugin: it appends events to a live log at a
steady rate (the emulator serves that log), while one producer and one consumer run as they
would in production. Every event's write time is kept by its ``(timestamp, id)``; a poller
reads the server's newest archived key every 50 ms and stamps every key up to it with the
poll's start, so a latency is at most 50 ms pessimistic. After each step one ``COUNT(*)`` of
the step's key range proves that every row is there (``bench.arrival``).

The rate climbs in steps until one does not hold (``rates``: the sizes' first steps, then the
1-2-5 series, then one step half-way between the last rate that held and the first that did
not). A step *holds* when its lag does not grow - the median latency of its last quarter is
within 0.5 s of its second quarter's -, its p99 latency is under 2 s, and its events have all
arrived 10 s after it ends; the highest step that holds is the highest steady rate.

Trap: the writer and the poller share the 2 cores with everything they measure. The writer's
own rate is measured first (into a scratch log, nothing reading it) and printed beside the
pipeline's; a step the writer could not write at (< 95 % of its rate) ends the climb and is
reported as the writer's limit, not the pipeline's.
"""

from __future__ import annotations

import itertools
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench import components, cputime, quiesce
from bench.arrival import POLL_SECONDS, Poller, arrivals
from bench.components import Topics
from bench.infra import EmulatedServer
from bench.measure import Child, Figure, percentile
from bench.run import Run

_HEAD = re.compile(rb'^\{\s*"timestamp"\s*:\s*"[^"]*"\s*,\s*"id"\s*:\s*\d+')
#: A step holds only with its p99 latency below this (seconds).
P99_BOUND = 2.0


@dataclass
class Step:
    """One rate step's outcome."""

    rate: int
    written: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # in write order
    drained: bool = False
    missing: int = 0  # rows of the step not in audit_data once its newest key was
    cpu_us: dict[str, float] = field(default_factory=dict)  # CPU µs per event, by process

    @property
    def wrote_rate(self) -> float:
        """The rate the writer achieved (events/s)."""
        return self.written / self.seconds if self.seconds else 0.0

    @property
    def writer_limited(self) -> bool:
        """The writer could not write at the step's rate: the step says nothing of the pipeline."""
        return self.wrote_rate < 0.95 * self.rate

    @property
    def held(self) -> bool:
        """Lag did not grow, p99 stayed under 2 s, and everything arrived soon after."""
        n = len(self.latencies)
        if not self.drained or n < 8 or self.writer_limited:
            return False
        second = self.latencies[n // 4 : n // 2]
        last = self.latencies[3 * n // 4 :]
        return (
            percentile(last, 50) <= percentile(second, 50) + 0.5
            and percentile(self.latencies, 99) < P99_BOUND
        )

    @property
    def verdict(self) -> str:
        """Why the step held or not, in words."""
        if self.writer_limited:
            return "writer could not keep up"
        if self.held:
            return "held"
        if self.missing:
            return f"{self.missing:,} rows missing"
        if not self.drained:
            return "not drained in 10 s"
        if self.latencies and percentile(self.latencies, 99) >= P99_BOUND:
            return "p99 over 2 s"
        return "lag grew"


def rates(first: Sequence[int], top_rate: int) -> Iterator[int]:
    """The rates to try: ``first``, then the 1-2-5 series above them, up to ``top_rate``.

    ``climb`` stops asking at the first step that does not hold.
    """
    yield from (r for r in first if r <= top_rate)
    top = max(first)
    decade = 1
    while True:
        for m in (1, 2, 5):
            rate = m * decade
            if rate > top_rate:
                return
            if rate > top:
                yield rate
        decade *= 10


def climb(first: Sequence[int], top_rate: int, try_step: Callable[[int], Step]) -> list[Step]:
    """Step up through ``rates`` until a step does not hold, then try once half-way."""
    steps: list[Step] = []
    for rate in rates(first, top_rate):
        step = try_step(rate)
        steps.append(step)
        if not step.held:
            break
    held = [s.rate for s in steps if s.held]
    last = steps[-1] if steps else None
    if held and last is not None and not last.held and not last.writer_limited:
        middle = (max(held) + last.rate) // 2
        if max(held) < middle < last.rate:
            steps.append(try_step(middle))
    return steps


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


def run_step(live: LiveLog, poller: Poller, rate: int, seconds: float) -> Step:
    """Write at ``rate`` for ``seconds``, then wait up to 10 s for every row and count them."""
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
    written = list(itertools.islice(live.written_at.items(), first, None))
    if not written:
        return step
    deadline = time.perf_counter() + 10.0
    while time.perf_counter() < deadline and not poller.seen(written[-1][0]):
        time.sleep(POLL_SECONDS)
    if poller.seen(written[-1][0]):
        step.missing = step.written - poller.count(written[0][0], written[-1][0])
        step.drained = step.missing == 0
    seen = arrivals([k for k, _ in written], list(poller.marks))
    step.latencies = [at - w for (_, w), at in zip(written, seen, strict=True) if at is not None]
    return step


def writer_rate(log_dir: Path, templates: Sequence[bytes], seconds: float = 2.0) -> float:
    """How fast the live log writer alone appends events here (events/s, nothing reading)."""
    scratch = LiveLog(log_dir, templates)
    try:
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            scratch.write(2000)
        return scratch.count / (time.perf_counter() - started)
    finally:
        scratch.close()


def e2e_stage(run: Run) -> None:
    """Latency percentiles per rate step and the highest steady rate, with one of each process."""
    written, _ = run.need_source()
    templates = written.raw_events()[:5000]
    own = writer_rate(run.path("corpus/writer-scratch"), templates)
    run.add(
        Figure(
            "end to end (log → audit_data)",
            "live log writer alone",
            own,
            "ev/s",
            note="the benchmark's own writer, nothing reading; a step above it is not measured",
        )
    )
    topics = Topics.named(f"bench.e2e.{uuid.uuid4().hex[:8]}")
    live = LiveLog(run.path("corpus/live"), templates)
    server = run.stack.emulator(live.writer.directory)
    bookmarks = run.stack.database("bench_e2e_bm")
    components.producer_setup(bookmarks, run.path("logs/e2e-producer-setup.log"))
    archive = run.stack.database("bench_e2e")
    components.consumer_setup(archive, run.path("logs/e2e-consumer-setup.log"))
    # Like the limit and the consumer runs: the earlier stages' dirty pages are flushed first,
    # or this stage's inserts pay for flushing them (it followed the consumer x3 run unflushed).
    quiesce.flush_dirty_pages(run.stack.server_dsn)
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

    trees = _component_pids(run, server, producer, consumer)
    itself = {"bench": os.getpid()}

    def try_step(rate: int) -> Step:
        before = cputime.snapshot(trees, itself)
        step = run_step(live, poller, rate, run.sizes.e2e_step_seconds)
        step.cpu_us = cputime.per_event(before, cputime.snapshot(trees, itself), step.written)
        if poller.error is not None:
            raise RuntimeError(f"poller failed: {poller.error}")
        return step

    try:
        _wait_warm(live, poller, timeout=90)
        steps = climb(run.sizes.e2e_rates, run.sizes.e2e_max_rate, try_step)
    finally:
        poller.stop_event.set()
        prod = producer.stop()
        cons = consumer.stop()
        poller.join(5)
        live.close()
        run.stack.stop_emulator(server)
    _report(run, steps, prod.peak_rss_mb, cons.peak_rss_mb)


def _component_pids(
    run: Run, server: EmulatedServer, producer: Child, consumer: Child
) -> dict[str, int]:
    """The processes whose CPU time each step reports (with their descendants)."""
    named = {
        "mariadbd": run.stack.db.proc if run.stack.db is not None else None,
        "consumer": consumer.proc,
        "producer": producer.proc,
        "emulator": server.child.proc,
        "broker": run.stack.broker.proc if run.stack.broker is not None else None,
    }
    return {name: proc.pid for name, proc in named.items() if proc is not None}


def _wait_warm(live: LiveLog, poller: Poller, timeout: float) -> None:
    """Until the first event is in ``audit_data`` (start-up and group join are not latency)."""
    first = next(iter(live.written_at))
    deadline = time.perf_counter() + timeout
    while not poller.seen(first):
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
            f"wrote {step.wrote_rate:,.0f} ev/s for {step.seconds:.0f} s; {step.verdict}"
        )
        if step.cpu_us:
            note += f"; {cputime.describe(step.cpu_us)}"
        run.add(
            Figure(stage, f"p99 @ {step.rate:,} ev/s", percentile(ms, 99), "ms", note=note),
            f"e2e.p99_ms.{step.rate}",
        )
    held = [s.rate for s in steps if s.held]
    run.add(
        Figure(
            stage,
            "highest steady rate",
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
    run.add(Figure(stage, "producer peak RSS", producer_rss, "MB"), "e2e.producer_rss")
    run.add(Figure(stage, "consumer peak RSS", consumer_rss, "MB"), "e2e.consumer_rss")
