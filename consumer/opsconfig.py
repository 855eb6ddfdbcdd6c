"""Settings of the operator commands ``consumer rotate|upload|restore`` and of the store.

Every flag is also an ``AUDITSTREAM_<FLAG>`` variable and a TOML key (``[rotation]``,
``[upload]``, ``[restore]`` sections). The commands (``consumer.ops``) build them with
``auditstream.settings.load``; the consumer's rotation task (``consumer.rotationtask``) is
given an ``UploadSettings``; tests construct them directly.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator

from auditstream import sqlident
from auditstream.dsn import MySQLDsn
from auditstream.errors import ConfigError
from consumer.archiver import Archiver
from consumer.config import ArchiveSettings, OciSettings, ShippingSettings
from consumer.retention import RetentionGuard
from consumer.rotation import Schedule, parse_interval
from consumer.seals import CheckpointShipper
from consumer.targets import FileStore, ObjectStore, TargetText, TargetUrl

_SIZE = re.compile(r"(\d+)\s*(|k|kb|kib|m|mb|mib|g|gb|gib)", re.IGNORECASE)


def _size(value: Any) -> Any:
    """``"64MiB"``, ``"10m"``, ``"1g"`` or a plain number of bytes (binary units)."""
    if isinstance(value, str) and (m := _SIZE.fullmatch(value.strip())):
        unit = m.group(2).lower()[:1]
        return int(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[unit]
    return value


class RotateSettings(ArchiveSettings):
    """``consumer rotate``: rotate now, or only when due with ``--interval``/``--max-*``."""

    interval: str | None = Field(None, description="rotate at UTC multiples of this: 1h, 1d")
    max_rows: int | None = Field(
        None, ge=1, description="rotate once audit_data has this many rows"
    )
    max_bytes: int | None = Field(None, ge=1, description="rotate at this size (64MiB, 10G)")
    force: bool = Field(False, description="rotate now, even if not due or empty")
    lock_wait_timeout: int = Field(5, ge=1, description="longest wait of RENAME for inserts (s)")

    _sizes = field_validator("max_bytes", mode="before")(_size)

    _interval = field_validator("interval")(ConfigError.checked(parse_interval))

    def schedule(self) -> Schedule:
        """The schedule these flags describe."""
        return Schedule(
            interval=parse_interval(self.interval) if self.interval else None,
            max_rows=self.max_rows,
            max_bytes=self.max_bytes,
        )


class StoreSettings(ArchiveSettings, OciSettings, ShippingSettings):
    """Where dumps go and how to reach OCI Object Storage."""

    target: TargetText = Field(
        "file://./auditstream-dumps",
        description="oci://bucket@namespace/prefix, oci://bucket/prefix or file:///dir",
    )
    part_size: int = Field(128 << 20, ge=1, description="multipart part size (128MiB)")
    parallel_uploads: int = Field(3, ge=1, description="parts uploaded at once")
    oci_retries: int = Field(8, ge=1, description="attempts per OCI call (exponential backoff)")

    _sizes = field_validator("part_size", mode="before")(_size)

    def store(self) -> tuple[TargetUrl, ObjectStore]:
        """The parsed target and a store for it (the OCI SDK is imported only for ``oci://``)."""
        return self._store_for(self.target)

    def shipper(self) -> CheckpointShipper | None:
        """The checkpoint writer of ``--seal-target`` (consumer.seals), or None."""
        if self.seal_target is None:
            return None
        target, store = self._store_for(self.seal_target)
        return CheckpointShipper(self.archive(), store, target)

    def _store_for(self, text: str) -> tuple[TargetUrl, ObjectStore]:
        target, store = self._plain_store(text)
        if self.retention_min_days is None:
            return target, store
        return target, RetentionGuard(store, self.retention_min_days, self.retention_policy)

    def _plain_store(self, text: str) -> tuple[TargetUrl, ObjectStore]:
        target = TargetUrl.parse(text)
        if target.scheme == "file":
            assert target.path is not None  # noqa: S101 - parse() sets it for file://
            return target, FileStore(target.path)
        from consumer.upload import OciStore

        options = self.oci_options(
            part_size=self.part_size,
            parallel=self.parallel_uploads,
            retry_attempts=self.oci_retries,
        )
        return target, OciStore(target, options)


class UploadSettings(StoreSettings):
    """``consumer upload``: every rotated table not yet verified, then exit."""

    method: Literal["dump", "export"] = Field("dump", description="zstd TSV chunks, or one CSV")
    keep_tables: int | None = Field(None, ge=0, description="drop verified tables beyond newest N")
    chunk_rows: int = Field(250_000, ge=1, description="rows per dump chunk")
    retry_stuck: bool = Field(False, description="retry tables marked stuck (after a fix)")

    def archiver(self, dsn: MySQLDsn) -> Archiver:
        """The archiver these flags describe, writing to a new ``store()`` (``.store``)."""
        target, store = self.store()
        return Archiver(
            dsn,
            store,
            target,
            self.staging_dir,
            method=self.method,
            keep_tables=self.keep_tables,
            chunk_rows=self.chunk_rows,
        )


class RestoreSettings(StoreSettings):
    """``consumer restore``: load one table's dump back into the archive database."""

    table: str = Field(description="the rotated table: audit_data_YYYYmmdd_HHMMSS[_N]")
    into: str | None = Field(None, description="restore under this name (default: --table)")

    _table = field_validator("table")(ConfigError.checked(sqlident.rotated_table))
