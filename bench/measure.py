"""Measuring: wall clock, peak RSS of child processes, percentiles, and the figures themselves.

Peak RSS comes from the kernel, not from sampling: ``os.wait4`` returns the ``ru_maxrss`` of the
one child waited for (``resource.RUSAGE_CHILDREN`` would mix every child of the run together).

Trap: ``ru_maxrss`` covers the child and the descendants *it* waited for; a component that
forks workers and never reaps them would be under-reported. Ours do not fork.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

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

    def ok(self, what: str) -> ChildResult:
        """This result when the child exited 0; otherwise an error naming its last log line.

        Raises:
            RuntimeError: the child failed (the message leads with the child's last words).
        """
        if self.returncode != 0:
            try:
                text = self.log.read_text(errors="replace")
            except OSError:
                text = ""
            lines = [ln for ln in text.splitlines() if ln.strip()]
            last = lines[-1] if lines else "(no output)"
            raise RuntimeError(f"{what} exited {self.returncode}: {last} (log {self.log.name})")
        return self


@dataclass
class Child:
    """A component run as a child process, reaped with ``os.wait4`` for its own peak RSS.

    Output goes to ``log`` (never to a pipe nobody reads: a full pipe would stall the child and
    the benchmark would measure the stall).
    """

    argv: list[str]
    log: Path
    env: Mapping[str, str] | None = None
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    result: ChildResult | None = field(default=None, repr=False)

    def start(self) -> Child:
        """Start the process; its stdout and stderr go to ``log``."""
        env = dict(os.environ if self.env is None else self.env)
        with self.log.open("ab") as out:
            self.started = time.perf_counter()
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        return self

    def wait(self, timeout: float) -> ChildResult:
        """Wait for the exit (killing the child after ``timeout`` seconds) and collect its cost."""
        assert self.proc is not None  # noqa: S101 - start() first
        if self.result is not None:
            return self.result
        deadline = time.monotonic() + timeout
        status, usage = 0, None
        while True:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                os.killpg(self.proc.pid, signal.SIGKILL)
                _, status, usage = os.wait4(self.proc.pid, 0)
                break
            time.sleep(0.01)
        seconds = time.perf_counter() - self.started
        self.proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
        self.result = ChildResult(
            self.argv, self.proc.returncode, seconds, usage.ru_maxrss / 1024, self.log
        )
        return self.result

    def stop(self, timeout: float = 20.0) -> ChildResult:
        """SIGTERM (the components' graceful stop), then wait; SIGKILL after ``timeout``."""
        assert self.proc is not None  # noqa: S101 - start() first
        if self.result is None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
        return self.wait(timeout)

    def alive(self) -> bool:
        """True while the process runs (reaping is left to ``wait``)."""
        if self.proc is None or self.result is not None:
            return False
        try:
            # WNOWAIT: look without reaping, so wait() still gets the rusage.
            state = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return False
        return state is None

    def tail(self, lines: int = 20) -> str:
        """The end of the child's output (for error messages)."""
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


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
