"""Measuring: wall clock, peak RSS of child processes, percentiles, and the figures themselves.

Peak RSS of a child is the kernel's ``VmHWM`` of that process, sampled (see ``PeakRss`` for
why ``wait4``'s ``ru_maxrss`` is wrong for children of a large parent). Its CPU time is
``wait4``'s user + system time, exact and the child's own (CPU time, unlike the high-water
mark, starts from zero at ``fork``).
"""

from __future__ import annotations

import math
import os
import resource
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from auditstream.process import kill, log_lines, read_log, send, spawn

MB = 1_000_000


@dataclass(frozen=True)
class Figure:
    """One measured number, with what it is compared against.

    Attributes:
        stage: the pipeline stage (``producer``, ``consumer x2``, ``baseline``, ``limit: ...``).
        metric: what was measured (``events/s``, ``MB/s``, ``p99 latency``).
        value: the number, or ``None`` when the stage could not run (see ``note``).
        unit: printed after the value.
        baseline: the predecessor's figure for the same metric, when one exists.
        limit: what the components allow for the same metric, measured in the same run.
        note: sizes, conditions, or why the figure is missing.
    """

    stage: str
    metric: str
    value: float | None
    unit: str
    baseline: float | None = None
    limit: float | None = None
    note: str = ""

    @property
    def vs_baseline(self) -> float | None:
        """``value / baseline`` (higher is better for rates)."""
        return _ratio(self.value, self.baseline)

    @property
    def vs_limit(self) -> float | None:
        """``value / limit``: the share of what the components allow."""
        return _ratio(self.value, self.limit)


def _ratio(value: float | None, ref: float | None) -> float | None:
    if value is None or ref is None or ref == 0:
        return None
    return value / ref


@dataclass
class Stopwatch:
    """Monotonic wall clock: ``with Stopwatch() as sw: ...; sw.seconds``."""

    start: float = 0.0
    seconds: float = 0.0

    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start


@dataclass
class ChildResult:
    """What a finished child process cost."""

    argv: list[str]
    returncode: int
    seconds: float
    peak_rss_mb: float
    log: Path
    #: user + system CPU seconds of the whole process life (start-up included)
    cpu_seconds: float = 0.0

    def ok(self, what: str) -> ChildResult:
        """This result when the child exited 0; otherwise an error naming its last log line.

        Raises:
            RuntimeError: the child failed (the message leads with the child's last words).
        """
        if self.returncode != 0:
            lines = [ln for ln in read_log(self.log).splitlines() if ln.strip()]
            last = lines[-1] if lines else "(no output)"
            raise RuntimeError(f"{what} exited {self.returncode}: {last} (log {self.log.name})")
        return self


#: seconds between two ``VmHWM`` reads: FAST_EVERY for the first FAST_FOR seconds, then SAMPLE_EVERY
FAST_EVERY, FAST_FOR, SAMPLE_EVERY = 0.02, 2.0, 0.25


class PeakRss(threading.Thread):
    """Samples ``VmHWM`` (the kernel's own RSS high-water mark) of one process: every 20 ms for
    its first 2 s (short children), then every 250 ms.

    ``VmHWM`` is already the process's running maximum, so the sampling only has to catch it
    before exit; at 20 ms throughout, four samplers cost 0.04 cores, the bench process's largest
    remaining share of the end-to-end stage (BENCHMARKS.md, "Issue 14, end to end (session 4)").

    Trap: ``ru_maxrss`` from ``wait4`` cannot be used for our children: a child forked from
    the benchmark process (which holds the corpus) keeps the pre-``exec`` high-water mark of
    that copy, so every child would report the benchmark's own size. ``VmHWM`` belongs to the
    process image after ``exec``. Growth in the last sampling interval before exit can be
    missed.
    """

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.path = Path(f"/proc/{pid}/status")
        self.peak_kb = 0
        self.done = threading.Event()

    def run(self) -> None:
        """Sample until the process is gone or ``done`` is set."""
        fast_until = time.monotonic() + FAST_FOR
        while not self.done.is_set():
            try:
                text = self.path.read_text()
            except OSError:
                return
            for line in text.splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_kb = max(self.peak_kb, int(line.split()[1]))
                    break
            self.done.wait(FAST_EVERY if time.monotonic() < fast_until else SAMPLE_EVERY)

    @property
    def peak_mb(self) -> float:
        """The highest ``VmHWM`` seen, in MiB."""
        return self.peak_kb / 1024


@dataclass
class Child:
    """A component run as a child process, with its wall time and peak RSS.

    Output goes to ``log`` (never to a pipe nobody reads: a full pipe would stall the child and
    the benchmark would measure the stall). Started and signalled by ``auditstream.process``;
    signals go to the child's whole process group.
    """

    argv: list[str]
    log: Path
    env: Mapping[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    result: ChildResult | None = field(default=None, repr=False)
    rss: PeakRss | None = field(default=None, repr=False)

    def start(self) -> Child:
        """Start the process; its stdout and stderr go to ``log``."""
        env = dict(os.environ if self.env is None else self.env)
        self.started = time.perf_counter()
        self.proc = spawn(self.argv, self.log, env=env)
        self.rss = PeakRss(self.proc.pid)
        self.rss.start()
        return self

    def wait(self, timeout: float) -> ChildResult:
        """Wait for the exit (killing the child after ``timeout`` seconds) and collect its cost."""
        assert self.proc is not None and self.rss is not None  # noqa: S101 - start() first
        if self.result is not None:
            return self.result
        cpu = self._reap(time.monotonic() + timeout)
        if cpu is None:  # timed out
            kill(self.proc, group=True)
            cpu = self._reap(None)
        seconds = time.perf_counter() - self.started
        self.rss.done.set()
        self.rss.join(1)
        self.result = ChildResult(
            self.argv, self.proc.returncode, seconds, self.rss.peak_mb, self.log, cpu or 0.0
        )
        return self.result

    def _reap(self, deadline: float | None) -> float | None:
        """Wait for the exit (until ``deadline``, None: for ever); its CPU seconds, None if alive.

        Trap: ``wait4`` reaps the child, so ``Popen`` is told the exit status here (it would
        otherwise wait for a pid that is gone); a child another call already reaped reads 0.
        """
        assert self.proc is not None  # noqa: S101 - start() first
        while self.proc.returncode is None:
            try:
                pid, status, usage = os.wait4(self.proc.pid, 0 if deadline is None else os.WNOHANG)
            except ChildProcessError:
                self.proc.wait()
                return 0.0
            if pid:
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                return usage.ru_utime + usage.ru_stime
            if deadline is not None and time.monotonic() >= deadline:
                return None
            time.sleep(0.02)
        return 0.0

    def stop(self, timeout: float = 20.0) -> ChildResult:
        """SIGTERM (the components' graceful stop), then wait; SIGKILL after ``timeout``."""
        assert self.proc is not None  # noqa: S101 - start() first
        if self.alive():
            send(self.proc, signal.SIGTERM, group=True)
        return self.wait(timeout)

    def alive(self) -> bool:
        """True while the process runs."""
        if self.proc is None or self.result is not None or self.proc.returncode is not None:
            return False
        try:  # WNOWAIT: look without reaping, so wait() still gets the exit's CPU time
            return os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
        except ChildProcessError:
            return False

    def tail(self, lines: int = 20) -> str:
        """The end of the child's output (for error messages)."""
        return log_lines(self.log, lines)


def run(
    argv: Sequence[str], log: Path, timeout: float, env: Mapping[str, str] | None = None
) -> ChildResult:
    """Run a child to completion.

    Raises:
        RuntimeError: it exited non-zero (see ``ChildResult.ok``).
    """
    return Child(list(argv), log, env).start().wait(timeout).ok(" ".join(argv[1:4]))


def self_peak_rss_mb() -> float:
    """Peak RSS of this (benchmark) process so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: every reported latency was observed)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]
