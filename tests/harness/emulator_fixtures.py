"""Fixtures: emulated MySQL Enterprise Audit sources (``emulator`` package) over the MySQL protocol.

``emulator_factory(flavor="oracle", *, users=None, audit_log_format=None, server_version=None,
log_file=None, log_nothing_for_archiver=True, subprocess=False, tls=False, component=False)
-> EmulatorHandle``; ``emulator`` is the default
(Oracle, in-process). The backend for proxied statements is the session's ``mysql_server``.

Accounts (unless ``users`` is given as ``NAME:PASSWORD[:PRIV,...]`` strings): ``archiver``
(AUDIT_ADMIN + SYSTEM_VARIABLES_ADMIN, for Percona's global buffer; assigned ``log_nothing`` unless
told otherwise), ``app`` (no privileges) and
``admin`` (ALL). ``log_all`` is assigned to ``%``.

Trap: in subprocess mode ``handle.writer`` is a second writer on the live file from the test
process. Both follow each other's rotations, but their id counters are separate: keep the
server's own sessions silent (``log_nothing``) while writing through it, or ids within a second
may repeat.
"""

from __future__ import annotations

import subprocess as sp
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from auditstream.dsn import MySQLDsn
from auditstream.process import INHERIT, kill, start_listening, terminate
from emulator.accounts import Account
from emulator.filters import FilterStore
from emulator.logfile import AuditLogWriter
from emulator.server import EmulatorServer
from emulator.state import EmulatorConfig
from tests.harness.net import free_port, wait_port_closed

DEFAULT_USERS = (
    "archiver:archiver-pw:AUDIT_ADMIN,SYSTEM_VARIABLES_ADMIN",
    "app:app-pw:NONE",
    "admin:admin-pw:ALL",
)
LOG_ALL = '{ "filter": { "log": true } }'
LOG_NOTHING = '{ "filter": { "log": false } }'


@dataclass
class EmulatorHandle:
    """A running emulated server and the ways a test drives it."""

    flavor: str
    log_dir: Path
    server_uuid: str
    port: int
    accounts: dict[str, Account]
    backend: MySQLDsn | None
    audit_log_format: str | None = None
    server_version: str | None = None
    log_file: str | None = None
    subprocess: bool = False
    tls: tuple[Path, Path] | None = None
    component: bool = False
    _server: EmulatorServer | None = None
    _proc: sp.Popen[bytes] | None = None
    _writer: AuditLogWriter | None = None
    _extra: dict[str, Any] = field(default_factory=dict)

    # ---------------------------------------------------------------- access

    def dsn(self, user: str = "archiver") -> MySQLDsn:
        """A DSN (with password) for one of the emulator's accounts."""
        account = self.accounts[user]
        return MySQLDsn(
            user=user,
            password=SecretStr(account.password) if account.password else None,
            host="127.0.0.1",
            port=self.port,
        )

    @property
    def archiver_dsn(self) -> MySQLDsn:
        """The AUDIT_ADMIN account the producer uses."""
        return self.dsn("archiver")

    @property
    def writer(self) -> AuditLogWriter:
        """Appends events to the live audit log (the server's own writer when in-process)."""
        if self._server is not None:
            return self._server.state.writer
        if self._writer is None:
            self._writer = _writer_for(self)
        return self._writer

    # ---------------------------------------------------------------- lifecycle

    def _config(self) -> EmulatorConfig:
        return EmulatorConfig(
            log_dir=self.log_dir,
            port=self.port,
            flavor=self.flavor,  # type: ignore[arg-type]
            server_uuid=self.server_uuid,
            backend_dsn=self.backend,
            users=tuple(self.accounts.values()),
            audit_log_format=self.audit_log_format,  # type: ignore[arg-type]
            server_version=self.server_version,
            log_file=self.log_file,
            component=self.component,
            tls_cert=self.tls[0] if self.tls else None,
            tls_key=self.tls[1] if self.tls else None,
        )

    def start(self) -> EmulatorHandle:
        if self.subprocess:
            cmd = [
                sys.executable,
                "-m",
                "emulator",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-dir",
                str(self.log_dir),
                "--flavor",
                self.flavor,
                "--server-uuid",
                self.server_uuid,
                "--log-level",
                "WARNING",
            ]
            if self.audit_log_format:
                cmd += ["--audit-log-format", self.audit_log_format]
            if self.server_version:
                cmd += ["--server-version", self.server_version]
            if self.log_file:
                cmd += ["--log-file", self.log_file]
            if self.backend is not None:
                cmd += ["--backend-dsn", self.backend.url(reveal=True)]
            if self.component:
                cmd.append("--component")
            if self.tls:
                cmd += ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])]
            for a in self.accounts.values():
                privs = ",".join(sorted(a.privileges)) or "NONE"
                cmd += ["--user", f"{a.name}:{a.password}:{privs}"]
            self._proc = start_listening(
                cmd, INHERIT, self.port, what="emulator", timeout=30, cwd=Path(__file__).parents[2]
            )
        else:
            self._server = EmulatorServer(self._config()).start()
            self.port = self._server.port
        return self

    def stop(self) -> None:
        """Stop serving (SIGTERM in subprocess mode); the log dir stays."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._proc is not None:
            terminate(self._proc, 20)
            self._proc = None
        wait_port_closed("127.0.0.1", self.port, 10)

    def kill(self) -> None:
        """SIGKILL the server process (subprocess mode); in-process it is a plain stop."""
        if self._proc is not None:
            kill(self._proc, group=True)  # its whole process group, no cleanup
            self._proc = None
            wait_port_closed("127.0.0.1", self.port, 10)
        else:
            self.stop()

    def restart(self) -> EmulatorHandle:
        """Stop and start again: same port, log dir and server_uuid."""
        self.stop()
        return self.start()


def _writer_for(handle: EmulatorHandle) -> AuditLogWriter:
    default = "audit_filter.log" if handle.flavor == "percona" else "audit.log"
    basename, _, suffix = (handle.log_file or default).rpartition(".")
    return AuditLogWriter(
        handle.log_dir,
        flavor=handle.flavor,  # type: ignore[arg-type]
        layout=handle._config().layout,
        basename=basename,
        suffix=suffix,
    )


def _self_signed(directory: Path) -> tuple[Path, Path]:
    directory.mkdir()
    cert, key = directory / "cert.pem", directory / "key.pem"
    sp.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        stdout=sp.DEVNULL,
        stderr=sp.DEVNULL,
    )
    return cert, key


def make_emulator(
    base: Path,
    backend: MySQLDsn | None,
    flavor: str = "oracle",
    *,
    users: list[str] | None = None,
    audit_log_format: str | None = None,
    server_version: str | None = None,
    log_file: str | None = None,
    log_nothing_for_archiver: bool = True,
    subprocess: bool = False,
    tls: bool = False,
    component: bool = False,
) -> EmulatorHandle:
    """Create the log dir, the accounts and filters, and start a server (TLS: self-signed)."""
    accounts = {a.name: a for a in (Account.parse(u) for u in (users or DEFAULT_USERS))}
    log_dir = base / f"emulator-{uuid.uuid4().hex[:8]}"
    log_dir.mkdir(parents=True)
    filters = FilterStore(log_dir)
    filters.set_filter("log_all", LOG_ALL)
    filters.set_filter("log_nothing", LOG_NOTHING)
    filters.set_user("%", "log_all")
    if log_nothing_for_archiver and "archiver" in accounts:
        filters.set_user("archiver@%", "log_nothing")
    handle = EmulatorHandle(
        flavor=flavor,
        log_dir=log_dir,
        server_uuid=str(uuid.uuid4()),
        port=free_port() if subprocess else 0,
        accounts=accounts,
        backend=backend,
        audit_log_format=audit_log_format,
        server_version=server_version,
        log_file=log_file,
        subprocess=subprocess,
        tls=_self_signed(log_dir.parent / f"{log_dir.name}-tls") if tls else None,
        component=component,
    )
    handle.start()
    if not subprocess:
        handle.port = handle._server.port if handle._server else handle.port
    return handle


@pytest.fixture
def emulator_factory(mysql_server: Any, tmp_path: Path) -> Iterator[Callable[..., EmulatorHandle]]:
    """A factory of emulated audit sources; every one is stopped after the test."""
    made: list[EmulatorHandle] = []

    def factory(flavor: str = "oracle", **kwargs: Any) -> EmulatorHandle:
        handle = make_emulator(tmp_path, mysql_server.dsn, flavor, **kwargs)
        made.append(handle)
        return handle

    yield factory
    for handle in made:
        handle.stop()


@pytest.fixture
def emulator(emulator_factory: Callable[..., EmulatorHandle]) -> EmulatorHandle:
    """The default emulated source: Oracle flavor, in-process, archiver with ``log_nothing``."""
    return emulator_factory()


__all__ = ["EmulatorHandle", "emulator", "emulator_factory", "make_emulator"]
