"""Command lines of the pipeline's own processes, exactly as an operator would run them.

The benchmark measures the shipped commands (``python -m producer``, ``python -m consumer``) as
child processes with their default settings; only what a deployment must give (where things
are) is passed, plus the fast group timeouts Tansu needs (``FAST_GROUP``, see
``auditstream.embedded``). Passwords go through the environment, never argv.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from auditstream.dsn import MySQLDsn
from auditstream.embedded import FAST_GROUP
from bench.infra import BENCH_PASSWORD, EmulatedServer
from bench.measure import Child, ChildResult, run
from bench.profile import wrap


@dataclass(frozen=True)
class Topics:
    """The three topics of one benchmark pipeline."""

    events: str
    control: str
    dlq: str

    @classmethod
    def named(cls, prefix: str) -> Topics:
        """``<prefix>.events`` and friends."""
        return cls(f"{prefix}.events", f"{prefix}.control", f"{prefix}.dlq")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITSTREAM_")}
    env.update(extra)
    return env


def producer_setup(bookmarks: MySQLDsn, log: Path) -> ChildResult:
    """``python -m producer setup``: the bookmark table."""
    argv = [sys.executable, "-m", "producer", "setup", "--bookmark-dsn", bookmarks.url(reveal=True)]
    return run(argv, log, timeout=60, env=_env())


def producer(
    source: EmulatedServer,
    bootstrap: str,
    topics: Topics,
    bookmarks: MySQLDsn,
    log: Path,
    *,
    once: bool,
    extra: tuple[str, ...] = (),
    profile: Path | None = None,
) -> Child:
    """Start one producer for ``source`` reading from the earliest event (under py-spy when
    ``profile`` names an output file)."""
    dsn = MySQLDsn(user=source.dsn.user, host=source.dsn.host, port=source.dsn.port)
    argv = [
        sys.executable,
        "-m",
        "producer",
        "--source-dsn",
        dsn.url(),
        "--bookmark-dsn",
        bookmarks.url(reveal=True),
        "--bootstrap-servers",
        bootstrap,
        "--topic",
        topics.events,
        "--control-topic",
        topics.control,
        "--start-from",
        "earliest",
        *(["--once"] if once else []),
        *extra,
    ]
    argv = wrap(argv, profile) if profile else argv
    return Child(argv, log, _env(AUDITSTREAM_SOURCE_PASSWORD=BENCH_PASSWORD)).start()


def consumer_setup(archive: MySQLDsn, log: Path) -> ChildResult:
    """``python -m consumer setup``: audit_data, offsets, ledger tables."""
    argv = [sys.executable, "-m", "consumer", "setup", "--archive-dsn", archive.url(reveal=True)]
    return run(argv, log, timeout=60, env=_env())


def consumer(
    archive: MySQLDsn,
    bootstrap: str,
    topics: Topics,
    group: str,
    log: Path,
    *,
    once: bool,
    extra: tuple[str, ...] = (),
    profile: Path | None = None,
) -> Child:
    """Start one group member (under py-spy when ``profile`` names an output file).

    Its in-consumer rotation stays on, as shipped: it rotates on wall-clock boundaries only, so
    the past-dated corpus does not set it off (a stage crossing midnight UTC counts the rotated
    tables too).
    """
    argv = [
        sys.executable,
        "-m",
        "consumer",
        "--archive-dsn",
        archive.url(reveal=True),
        "--bootstrap-servers",
        bootstrap,
        "--topic",
        topics.events,
        "--control-topic",
        topics.control,
        "--dlq-topic",
        topics.dlq,
        "--group",
        group,
        *(["--once"] if once else []),
        *extra,
    ]
    argv = wrap(argv, profile) if profile else argv
    fast = {k: str(v) for k, v in FAST_GROUP.items()}
    env = _env(AUDITSTREAM_KAFKA_CONFIG=json.dumps(fast))
    return Child(argv, log, env).start()


def consumer_command(command: str, archive: MySQLDsn, log: Path, *args: str) -> Child:
    """Start ``python -m consumer <command> --archive-dsn ... <args>`` (rotate, upload)."""
    argv = [
        sys.executable,
        "-m",
        "consumer",
        command,
        "--archive-dsn",
        archive.url(reveal=True),
        *args,
    ]
    return Child(argv, log, _env()).start()


def wait_topics(bootstrap: str, names: list[str], timeout: float = 60.0) -> None:
    """Until the broker lists every topic in ``names`` (the producer creates them at start).

    Trap: a consumer subscribed before its topics exist waits for librdkafka's next metadata
    refresh (``topic.metadata.refresh.interval.ms``, 5 minutes by default) before it is assigned
    anything, so the benchmark starts consumers only once the producer has created the topics.

    Raises:
        RuntimeError: the topics did not appear in time.
    """
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if set(names) <= set(admin.list_topics(timeout=10).topics):
            return
        time.sleep(0.1)
    raise RuntimeError(f"topics {names} did not appear within {timeout:.0f} s")
