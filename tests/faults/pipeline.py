"""The whole pipeline on the real components, driven step by step, and checked by ``reconcile``.

``make_pipeline(emulator, bootstrap, archive_server, workdir)`` gives a :class:`Pipeline`: the
emulated source (its log written by ``write``), unique topic and group names, a fresh archive
database with the consumer's schema (it also holds the producer's bookmarks). Producers and
consumers run as the shipped commands in subprocesses (``spawn_*``: so ``kill -9`` is real) or
in-process (``*_once``: faster). ``check()`` runs ``reconcile`` over every store and returns
its report; ``assert_clean()`` fails with the findings.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditstream.dsn import MySQLDsn
from auditstream.process import kill, send, spawn
from consumer.config import ConsumerSettings
from consumer.setup import setup as consumer_setup
from consumer.targets import ObjectStore, TargetUrl
from emulator.traffic import write_events
from ops.reconcile import KeyRange, Report, Stores, reconcile
from producer.bookmark import BookmarkStore
from tests.harness.emulator_fixtures import EmulatorHandle
from tests.harness.kafka import FAST_GROUP
from tests.harness.mariadb import create_database

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2025, 6, 1, tzinfo=UTC)


@dataclass
class Pipeline:
    """One pipeline's names and handles (see the module docstring)."""

    emu: EmulatorHandle
    bootstrap: str
    archive: MySQLDsn
    workdir: Path
    topic: str
    control: str
    dlq: str
    group: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    written: int = 0
    dumps: tuple[ObjectStore, TargetUrl] | None = None

    # ------------------------------------------------------------------ the source

    def write(self, count: int, seed: int = 1, **kwargs: Any) -> int:
        """Append ``count`` generated events to the source's live log."""
        start = kwargs.pop("start", None) or datetime.fromtimestamp(
            START.timestamp() + self.written, UTC
        )
        n = write_events(self.emu.writer, count, seed, start=start, **kwargs)
        self.written += n
        return n

    # ------------------------------------------------------------------ producer

    def producer_argv(self, *extra: str, port: int | None = None) -> list[str]:
        """``python -m producer`` flags for this pipeline (password from the environment)."""
        return [
            sys.executable, "-m", "producer",
            "--source-dsn", f"mysql://archiver@127.0.0.1:{port or self.emu.port}",
            "--bookmark-dsn", self.archive.url(reveal=True),
            "--bootstrap-servers", self.bootstrap,
            "--topic", self.topic, "--control-topic", self.control,
            "--start-from", "earliest",
            "--read-buffer-size", "65536",
            "--idle-min", "0.05", "--idle-max", "0.2", "--backoff-max", "1",
            "--heartbeat-interval", "3600",
            *extra,
        ]  # fmt: skip

    def env(self) -> dict[str, str]:
        """The environment of the subprocesses: secrets only here, never in flags."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITSTREAM_")}
        password = self.emu.archiver_dsn.password
        assert password is not None
        env["AUDITSTREAM_SOURCE_PASSWORD"] = password.get_secret_value()
        return env

    def spawn(self, argv: Sequence[str], name: str) -> subprocess.Popen[bytes]:
        """Start ``argv`` in the background, output to ``<workdir>/<name>.log``."""
        proc = spawn(argv, self.workdir / f"{name}.log", cwd=ROOT, env=self.env())
        self.procs.append(proc)
        return proc

    def run(self, argv: Sequence[str], name: str, timeout: float = 120.0) -> int:
        """Run ``argv`` to its end; return its exit code."""
        return self.spawn(argv, name).wait(timeout)

    def spawn_producer(self, *extra: str, port: int | None = None) -> subprocess.Popen[bytes]:
        """A producer that keeps following the log."""
        return self.spawn(self.producer_argv(*extra, port=port), "producer")

    def producer_once(self, *extra: str, timeout: float = 120.0, port: int | None = None) -> None:
        """Drain the log with ``--once`` (a subprocess); fail with its log on a non-zero exit."""
        proc = self.spawn(self.producer_argv("--once", *extra, port=port), "producer")
        rc = proc.wait(timeout)
        assert rc == 0, self.log("producer")

    # ------------------------------------------------------------------ consumer

    def consumer_settings(self, **extra: Any) -> ConsumerSettings:
        """Settings of one group member (fast group joins, short linger)."""
        values: dict[str, Any] = {
            "archive_dsn": self.archive.url(reveal=True),
            "bootstrap_servers": self.bootstrap,
            "topic": self.topic,
            "control_topic": self.control,
            "dlq_topic": self.dlq,
            "group": self.group,
            "kafka_config": {k: str(v) for k, v in FAST_GROUP.items()},
            "batch_linger_ms": 50,
            "backoff_max": 1.0,
        }
        values.update(extra)
        return ConsumerSettings(**values)

    def consumer_argv(self, *extra: str, archive: MySQLDsn | None = None) -> list[str]:
        """``python -m consumer`` flags for this pipeline (``archive``: e.g. through a proxy)."""
        kafka = [f"--kafka-config={k}={v}" for k, v in FAST_GROUP.items()]
        return [
            sys.executable, "-m", "consumer",
            "--archive-dsn", (archive or self.archive).url(reveal=True),
            "--bootstrap-servers", self.bootstrap,
            "--topic", self.topic, "--control-topic", self.control, "--dlq-topic", self.dlq,
            "--group", self.group, "--batch-linger-ms", "50", "--backoff-max", "1",
            "--insert-method", "insert",
            *kafka, *extra,
        ]  # fmt: skip

    def spawn_consumer(
        self, *extra: str, archive: MySQLDsn | None = None
    ) -> subprocess.Popen[bytes]:
        """A group member that keeps consuming."""
        return self.spawn(self.consumer_argv(*extra, archive=archive), "consumer")

    def consumer_once(self, **extra: Any) -> None:
        """One in-process member with ``once``: archive what the topics hold, then return."""
        from consumer.__main__ import build

        loop = build(self.consumer_settings(once=True, **extra))
        try:
            assert loop.run() == 0
        finally:
            loop.sink.close()

    # ------------------------------------------------------------------ rotation, upload

    def rotate_argv(self, *extra: str) -> list[str]:
        """``python -m consumer rotate`` (now, unless audit_data is empty)."""
        return [sys.executable, "-m", "consumer", "rotate",
                "--archive-dsn", self.archive.url(reveal=True), *extra]  # fmt: skip

    def rotate(self) -> None:
        """Rotate now; fail with the log otherwise."""
        assert self.run(self.rotate_argv(), "rotate") == 0, self.log("rotate")

    def upload_argv(self, target: str, *extra: str) -> list[str]:
        """``python -m consumer upload`` to ``target`` (staging under the work dir)."""
        return [sys.executable, "-m", "consumer", "upload",
                "--archive-dsn", self.archive.url(reveal=True), "--target", target,
                "--staging-dir", str(self.workdir / "staging"), "--chunk-rows", "150",
                *extra]  # fmt: skip

    def upload(self, target: str, *extra: str) -> None:
        """Dump, upload and verify every pending table; fail with the log otherwise."""
        assert self.run(self.upload_argv(target, *extra), "upload") == 0, self.log("upload")

    def file_target(self) -> str:
        """A ``file://`` target in the work dir; ``dumps`` is set to read it back."""
        from consumer.targets import FileStore

        root = self.workdir / "objects"
        root.mkdir(exist_ok=True)
        self.dumps = (FileStore(root), TargetUrl.parse(f"file://{root}"))
        return f"file://{root}"

    # ------------------------------------------------------------------ checks

    def stores(self, **overrides: Any) -> Stores:
        """Every store of this pipeline, for ``reconcile``."""
        values: dict[str, Any] = {
            "source": self.emu.archiver_dsn,
            "kafka": {"bootstrap.servers": self.bootstrap},
            "topic": self.topic,
            "control_topic": self.control,
            "dlq_topic": self.dlq,
            "archive": self.archive,
            "dumps": self.dumps,
            "work_dir": self.workdir,
            "idle_timeout": 20.0,
        }
        values.update(overrides)
        return Stores(**values)

    def check(self, keys: KeyRange | None = None, **overrides: Any) -> Report:
        """``reconcile`` over every store."""
        return reconcile(self.stores(**overrides), keys or KeyRange())

    def assert_clean(self, expected: int | None = None, **overrides: Any) -> Report:
        """Reconcile must report no disagreement (and ``expected`` source events, if given)."""
        report = self.check(**overrides)
        detail = "\n".join(str(f) for f in report.findings[:40])
        assert report.clean, f"reconcile found {dict(report.counts)}:\n{detail}"
        if expected is not None:
            assert report.keys.get("source") == expected, report.keys
        return report

    def archived(self) -> int:
        """Rows in every event table (audit_data and rotated)."""
        from auditstream import mysql as db
        from ops.verify.tables import event_tables

        conn = db.connect(self.archive)
        try:
            total = 0
            for table in event_tables(conn):
                cur = conn.cursor()
                cur.execute(f"SELECT COUNT(*) FROM `{table}`")
                total += int(str(cur.fetchall()[0][0]))  # type: ignore[index]
            conn.commit()
            return total
        finally:
            conn.close()

    def wait_archived(self, count: int, timeout: float = 90.0) -> None:
        """Wait until the event tables hold ``count`` rows (or fail with the logs)."""
        wait_for(lambda: self.archived() >= count, timeout, lambda: self.log("consumer"))

    def log(self, name: str) -> str:
        """The tail of a subprocess log."""
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop_all(self) -> None:
        """SIGTERM every subprocess still running (SIGKILL after 20 s)."""
        for proc in self.procs:
            send(proc, signal.SIGTERM)  # all of them first: they stop in parallel
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                kill9(proc)


def crashing(argv: Sequence[str], at: str) -> list[str]:
    """``argv`` (``python -m <command> ...``) run so that it SIGKILLs itself at ``at``."""
    return [sys.executable, "-m", "tests.faults.crashpoint", at, argv[2], *argv[3:]]


def kill9(proc: subprocess.Popen[bytes]) -> None:
    """``kill -9`` of a subprocess started by ``Pipeline.spawn`` (its own process group)."""
    if proc.poll() is None:
        kill(proc, group=True)


def wait_for(
    condition: Callable[[], bool], timeout: float, why: Callable[[], str] = lambda: ""
) -> None:
    """Poll ``condition`` every 0.2 s; fail after ``timeout`` seconds with ``why()``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s\n{why()}")
        time.sleep(0.2)


def make_pipeline(
    emu: EmulatorHandle, bootstrap: str, server_dsn: MySQLDsn, workdir: Path
) -> Pipeline:
    """A pipeline with fresh names and archive database (schema and bookmark table set up)."""
    archive = create_database(server_dsn, prefix="t")
    consumer_setup(archive)
    BookmarkStore(archive).setup()
    tag = uuid.uuid4().hex[:8]
    workdir.mkdir(parents=True, exist_ok=True)
    return Pipeline(
        emu, bootstrap, archive, workdir, f"ev-{tag}", f"ctl-{tag}", f"dlq-{tag}", f"grp-{tag}"
    )


def rotate_by_hand(archive: MySQLDsn, name: str) -> None:
    """Rotate ``audit_data`` to ``name`` the way the rotator does (one atomic RENAME)."""
    from auditstream import mysql as db
    from auditstream.sqlident import rotated_table

    conn = db.connect(archive, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute("DROP TABLE IF EXISTS audit_data_new")
        cur.execute("CREATE TABLE audit_data_new LIKE audit_data_template")
        cur.execute(
            f"RENAME TABLE audit_data TO {rotated_table(name)}, audit_data_new TO audit_data"
        )
    finally:
        conn.close()


def dump_to(archive: MySQLDsn, table: str, root: Path, method: str = "dump") -> TargetUrl:
    """Dump ``table`` (``consumer.dump``) and copy its files to a ``file://`` target."""
    from auditstream import mysql as db
    from consumer.dump import dump_table
    from consumer.dumpformat import MANIFEST
    from consumer.targets import FileStore

    staging = root.parent / f"staging-{uuid.uuid4().hex[:6]}" / table
    conn = db.connect(archive)
    try:
        manifest = dump_table(conn, table, staging, method=method, chunk_rows=200)
    finally:
        conn.close()
    target = TargetUrl.parse(f"file://{root}")
    store = FileStore(root)
    for obj in manifest.objects:
        store.put_file(target.object_name(table, obj.name), staging / obj.name, obj)
    (root / table / MANIFEST).write_bytes((staging / MANIFEST).read_bytes())
    return target
