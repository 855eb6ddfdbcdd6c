"""The components of one benchmark run: private mariadbd, Tansu, emulated audit sources.

Everything runs as child processes on free loopback ports inside one work directory, so a run
starts from nothing and leaves nothing behind (``Stack.close``). The same classes the tests use
(``auditstream.embedded``) start the database and the broker, with the same settings.

Trap: all of it shares the machine's cores with the component being measured. On 2 cores the
broker, the database and the emulator take CPU from the producer and the consumer; that is the
machine the figures describe, and ``BENCHMARKS.md`` says so.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import sql
from auditstream import mysql
from auditstream.dsn import MySQLDsn
from auditstream.embedded import PrivateMariaDB, TansuBroker, free_port, wait_for_port
from auditstream.embedded_kafka import KafkaBroker
from bench.measure import Child

BENCH_USER = "bench"
BENCH_PASSWORD = "bench-pw"  # noqa: S105 - a throwaway account of a private emulator


@dataclass
class EmulatedServer:
    """One ``python -m emulator`` process: an audited server with its own log directory."""

    server_uuid: str
    log_dir: Path
    port: int
    child: Child

    @property
    def dsn(self) -> MySQLDsn:
        """The reader account, as the producer and the baseline use it.

        It has every privilege on the emulator (the least-privilege grants are the emulator's
        and the producer's tests' business, not a speed question).
        """
        from pydantic import SecretStr

        return MySQLDsn(
            user=BENCH_USER, password=SecretStr(BENCH_PASSWORD), host="127.0.0.1", port=self.port
        )


@dataclass
class Stack:
    """The run's components; ``close()`` stops every one of them."""

    workdir: Path
    db: PrivateMariaDB | None = None
    broker: TansuBroker | KafkaBroker | None = None
    emulators: list[EmulatedServer] = field(default_factory=list)

    @classmethod
    def start(cls, workdir: Path, *, broker: bool = True, kind: str = "tansu") -> Stack:
        """Start mariadbd (and the broker of ``kind`` unless ``broker=False``) under ``workdir``."""
        stack = cls(workdir)
        try:
            stack.db = PrivateMariaDB(base=workdir / "mariadb").start()
            if broker and kind == "kafka":
                stack.broker = KafkaBroker(workdir=workdir / "kafka").start()
            elif broker:
                (workdir / "tansu").mkdir(exist_ok=True)
                stack.broker = TansuBroker(workdir=workdir / "tansu").start()
        except BaseException:
            stack.close()
            raise
        return stack

    @property
    def bootstrap(self) -> str:
        """The broker's ``bootstrap.servers``."""
        assert self.broker is not None  # noqa: S101 - started with broker=True
        return self.broker.bootstrap

    @property
    def server_dsn(self) -> MySQLDsn:
        """The archive server, without a database selected."""
        assert self.db is not None  # noqa: S101 - started
        return self.db.dsn

    def database(self, name: str) -> MySQLDsn:
        """Create (or empty) database ``name`` and return a DSN that selects it."""
        if not name.replace("_", "").isalnum():
            raise ValueError(f"not a plain database name: {name!r}")
        conn = mysql.connect(self.server_dsn, autocommit=True)
        try:
            cur = conn.cursor()
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
            cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        finally:
            conn.close()
        return self.server_dsn.with_database(name)

    def emulator(self, log_dir: Path, *, flavor: str = "oracle") -> EmulatedServer:
        """Start an emulated audited server reading ``log_dir`` (its backend: our mariadbd)."""
        port = free_port()
        server_uuid = str(uuid.uuid4())
        argv = [
            sys.executable,
            "-m",
            "emulator",
            "--port",
            str(port),
            "--log-dir",
            str(log_dir),
            "--flavor",
            flavor,
            "--server-uuid",
            server_uuid,
            "--backend-dsn",
            self.server_dsn.url(reveal=True),
            "--user",
            f"{BENCH_USER}:{BENCH_PASSWORD}",
        ]
        child = Child(argv, self.workdir / f"emulator-{port}.log").start()
        wait_for_port("127.0.0.1", port, 30, what="emulator", alive=child.alive)
        server = EmulatedServer(server_uuid, log_dir, port, child)
        self.emulators.append(server)
        _apply_filters(server.dsn)
        return server

    def stop_emulator(self, server: EmulatedServer) -> None:
        """Stop one emulated server before the run ends (frees its CPU for the next stage)."""
        server.child.stop(10)
        self.emulators.remove(server)

    def close(self) -> None:
        """Stop every component (best effort, in reverse order of start)."""
        for server in reversed(self.emulators):
            server.child.stop(10)
        self.emulators.clear()
        if self.broker is not None:
            self.broker.stop()
            self.broker = None
        if self.db is not None:
            self.db.stop()
            self.db = None

    def cleanup(self) -> None:
        """``close()`` and remove the work directory."""
        self.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _apply_filters(dsn: MySQLDsn) -> None:
    """The documented source setup (``sql/source/filters.sql``) with the bench account.

    Without ``log_nothing`` the reader's own statements would be audited and the producer's
    self-audit guard would (rightly) refuse to start.
    """
    conn = mysql.connect(dsn, autocommit=True)
    try:
        cur = conn.cursor()
        for stmt in sql.statements("source/filters"):
            cur.execute(stmt.replace("'audituser@%'", f"'{BENCH_USER}@%'"))
            cur.fetchall()
    finally:
        conn.close()
