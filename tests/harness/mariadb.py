"""The archive MySQL for the tests: a private ``mariadbd`` in a temp datadir, or a given server.

Which server a test gets:
1. ``MYSQL_TEST_DSN`` set (e.g. ``mysql://root@127.0.0.1:3306``): that server; every test still
   gets a database of its own.
2. ``--docker``: MySQL 8.4 through testcontainers.
3. Otherwise: ``mariadb-install-db`` + ``mariadbd`` on a free loopback port, root without a
   password, ``local_infile`` on. ``restart()`` / ``kill()`` keep the datadir (fault tests).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import mysql.connector

from auditstream.dsn import MySQLDsn
from tests.harness.net import free_port, wait_for_port, wait_port_closed


def _binary(*names: str) -> str:
    for name in names:
        path = shutil.which(name) or (
            f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
        )
        if path:
            return path
    raise FileNotFoundError(f"none of {names} is installed (apt-get install mariadb-server)")


@dataclass
class PrivateMariaDB:
    """A ``mariadbd`` of the test session's own."""

    port: int = field(default_factory=free_port)
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mariadb-")))
    proc: subprocess.Popen[bytes] | None = None
    extra_args: tuple[str, ...] = ()

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def dsn(self) -> MySQLDsn:
        return MySQLDsn(user="root", host="127.0.0.1", port=self.port)

    def install(self) -> PrivateMariaDB:
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
        if not self.datadir.exists():
            self.install()
        self.proc = subprocess.Popen(
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
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        proc = self.proc
        wait_for_port(
            "127.0.0.1", self.port, timeout, what="mariadbd", alive=lambda: proc.poll() is None
        )
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        wait_port_closed("127.0.0.1", self.port, 10.0)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@dataclass
class ExternalMySQL:
    """A server someone else runs (``MYSQL_TEST_DSN``, the machine's service, testcontainers)."""

    dsn: MySQLDsn

    def cleanup(self) -> None:
        """Not ours to stop."""


def create_database(server_dsn: MySQLDsn, prefix: str = "t") -> MySQLDsn:
    """Create a fresh, uniquely named database and return a DSN that selects it."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = mysql.connector.connect(**server_dsn.connect_kwargs())
    try:
        conn.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    finally:
        conn.close()
    return server_dsn.with_database(name)


def drop_database(dsn: MySQLDsn) -> None:
    """Drop the database ``dsn`` selects (best effort: the server may be gone)."""
    assert dsn.database and dsn.database.startswith(("t_", "a_"))
    try:
        conn = mysql.connector.connect(**dsn.with_database(None).connect_kwargs())
    except mysql.connector.Error:
        return
    try:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{dsn.database}`")
    finally:
        conn.close()
