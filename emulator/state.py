"""What one emulated server holds across sessions: settings, log files, filters, globals."""

from __future__ import annotations

import re
import threading
import uuid
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from auditstream.dsn import MySQLDsn
from emulator.accounts import Account
from emulator.filters import FilterStore
from emulator.logfile import AuditLogWriter
from emulator.logindex import AuditLogIndex
from emulator.variables import BUFFER_DEFAULT, buffer_variable, prefix, specs

UUID_FILE = "emulator-server-uuid"
VERSIONS = {
    "oracle": ("8.0.40-commercial", "MySQL Enterprise Server - Commercial"),
    "percona": ("8.0.39-30", "Percona Server (GPL), Release 30, Revision 6e6ba1ec"),
}
#: the first Percona release with ``audit_log_filter.format=JSONL`` (and the re-encoding reader
#: that reads it); from 9.x on JSONL is the default
PERCONA_JSONL = (8, 4, 10)
_VERSION = re.compile(r"(\d+)\.(\d+)\.(\d+)")


def version_tuple(version: str) -> tuple[int, int, int]:
    """``(major, minor, patch)`` of a version string such as ``9.4.0-1`` or ``8.0.40-commercial``.

    Raises:
        ValueError: the text does not start with ``X.Y.Z``.
    """
    m = _VERSION.match(version)
    if m is None:
        raise ValueError(f"server version {version!r} does not start with X.Y.Z")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


class EmulatorConfig(BaseModel):
    """Settings of one emulated server (built by the CLI or the test fixtures).

    ``users`` are test-fixture credentials; real deployments never pass passwords around so.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    log_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    flavor: Literal["oracle", "percona"] = "oracle"
    server_uuid: str | None = None
    backend_dsn: MySQLDsn | None = None
    users: tuple[Account, ...] = ()
    audit_log_format: Literal["JSON", "JSONL", "NEW", "OLD"] | None = Field(
        default=None, description="default: JSONL for Percona 9.x, JSON otherwise"
    )
    server_version: str | None = Field(
        default=None, description="emulated @@version; default 8.0.40-commercial / 8.0.39-30"
    )
    log_file: str | None = Field(default=None, description="default audit.log / audit_filter.log")
    rotate_on_size: int = 0
    compress: bool = False
    max_size: int = 0
    prune_seconds: int = 0
    component: bool = Field(
        default=False, description="MySQL 9.x / Percona 8.4 component: audit_log.* variables"
    )
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @model_validator(mode="after")
    def _format_exists(self) -> EmulatorConfig:
        version_tuple(self.version)  # a version that does not start with X.Y.Z is refused
        if self.flavor == "percona" and self.format == "JSONL":
            if version_tuple(self.version) < PERCONA_JSONL:
                raise ValueError(f"Percona {self.version} has no JSONL format (added in 8.4.10-10)")
        elif self.format == "JSONL":
            raise ValueError("only Percona Server writes the JSONL audit log format")
        return self

    @property
    def version(self) -> str:
        """The emulated ``@@version``."""
        return self.server_version or VERSIONS[self.flavor][0]

    @property
    def format(self) -> str:
        """The audit log format: as given, else JSONL for Percona 9.x and JSON otherwise."""
        if self.audit_log_format is not None:
            return self.audit_log_format
        if self.flavor == "percona" and version_tuple(self.version)[0] >= 9:
            return "JSONL"
        return "JSON"

    @property
    def layout(self) -> Literal["json", "jsonl", "pretty"]:
        """How the writer lays events out: Percona 8.4.10+ JSON pretty-printed, JSONL compact.

        Percona 8.0 keeps one line per event (its pages are the file's bytes here, and the
        existing tests read them so; docs/emulator.md, Limits).
        """
        if self.format == "JSONL":
            return "jsonl"
        return "pretty" if self.reencoding_reader else "json"

    @property
    def reencoding_reader(self) -> bool:
        """Whether ``audit_log_read()`` re-encodes events (Percona 8.4.10+: perconatext)."""
        return self.flavor == "percona" and version_tuple(self.version) >= PERCONA_JSONL


class ServerState:
    """The shared state every session of one emulated server sees."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.flavor = config.flavor
        config.log_dir.mkdir(parents=True, exist_ok=True)
        self.server_uuid = self._uuid(config)
        self.version, self.version_comment = config.version, VERSIONS[config.flavor][1]
        default_file = "audit_filter.log" if config.flavor == "percona" else "audit.log"
        basename, _, suffix = (config.log_file or default_file).rpartition(".")
        self.basename, self.suffix = basename, suffix
        self.writer = AuditLogWriter(
            config.log_dir,
            flavor=config.flavor,
            basename=basename,
            suffix=suffix,
            layout=config.layout,
            rotate_on_size=config.rotate_on_size,
            compress=config.compress,
            max_size=config.max_size,
            prune_seconds=config.prune_seconds,
        )
        # Percona reads every file whose name holds the base name: after a format change
        # (audit_filter.json -> audit_filter.jsonl) the old rotated files are read as well.
        self.index = AuditLogIndex(
            config.log_dir, basename, suffix, any_suffix=config.flavor == "percona"
        )
        self.index_lock = threading.Lock()
        self.filters = FilterStore(config.log_dir)
        self.specs = specs(config.flavor, config.component)
        self.prefix = prefix(config.flavor, config.component)
        self.buffer_var = buffer_variable(config.flavor, config.component)
        self.format_var = self.prefix + "format"
        #: what audit_log_read() reads (Percona's JSONL-era reader reads both JSON layouts)
        self.readable_formats = ("JSON", "JSONL") if config.reencoding_reader else ("JSON",)
        self.globals: dict[str, str | int] = self._globals()

    @staticmethod
    def _uuid(config: EmulatorConfig) -> str:
        path = config.log_dir / UUID_FILE
        if config.server_uuid:
            path.write_text(config.server_uuid, encoding="utf-8")
            return config.server_uuid
        if path.exists():
            return path.read_text(encoding="utf-8").strip()
        value = str(uuid.uuid4())
        path.write_text(value, encoding="utf-8")
        return value

    def _globals(self) -> dict[str, str | int]:
        c = self.config
        p = prefix(c.flavor, c.component)
        values: dict[str, str | int] = {
            f"{p}buffer_size": 1048576,
            f"{p}compression": "GZIP" if c.compress else "NONE",
            f"{p}database": "mysql",
            f"{p}disable": "OFF",
            f"{p}encryption": "NONE",
            f"{p}file": str(c.log_dir / f"{self.basename}.{self.suffix}"),
            f"{p}format": c.format,
            f"{p}format_unix_timestamp": "OFF",
            f"{p}max_size": c.max_size,
            f"{p}prune_seconds": c.prune_seconds,
            f"{p}rotate_on_size": c.rotate_on_size,
            f"{p}strategy": "ASYNCHRONOUS",
            f"{p}read_buffer_size": BUFFER_DEFAULT,
        }
        if c.flavor == "percona":
            values[f"{p}handler"] = "FILE"
        else:
            values.update(
                {
                    f"{p}filter_id": 0,
                    f"{p}connection_policy": "ALL",
                    f"{p}policy": "ALL",
                    f"{p}statement_policy": "ALL",
                    f"{p}flush": "OFF",
                }
            )
        return values

    def default(self, name: str) -> int:
        """``SET x = DEFAULT`` for an integer audit variable: the compiled-in default."""
        return BUFFER_DEFAULT if name == self.buffer_var else 0

    def set_global(self, name: str, value: str | int) -> None:
        """Change a global; the writer follows its rotation and pruning settings."""
        self.globals[name] = value
        short = name.removeprefix(self.prefix)
        if short in ("rotate_on_size", "max_size", "prune_seconds") and isinstance(value, int):
            setattr(self.writer, short, value)
            if short != "rotate_on_size":
                self.writer.prune()

    def accounts(self) -> dict[str, Account]:
        """The accounts by name."""
        return {a.name: a for a in self.config.users}
