"""Operator entry points (``python -m consumer rotate|upload|restore``) and the consumer's task.

Every flag is also an ``AUDITSTREAM_<FLAG>`` variable and a TOML key (``[rotation]``,
``[upload]``, ``[restore]`` sections). Settings are built here only (``auditstream.settings.load``);
tests construct them directly. ``RotationTask`` is the periodic task the consumer loop runs:
rotation inline (it is quick), dump/upload in a background thread (it is not).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from auditstream import log as logsetup
from auditstream import mysql, sqlident
from auditstream.dsn import MySQLDsn
from auditstream.errors import AuditStreamError, ConfigError
from auditstream.settings import load
from consumer.archiver import Archiver
from consumer.config import ArchiveSettings, OciSettings
from consumer.ledger import Ledger, archive_errors
from consumer.restore import restore
from consumer.retention import RetentionGuard
from consumer.rotation import Rotator, Schedule, parse_interval
from consumer.seals import CheckpointShipper
from consumer.targets import FileStore, ObjectStore, TargetText, TargetUrl

log = logging.getLogger("consumer.ops")
_SIZE = re.compile(r"(\d+)\s*(|k|kb|kib|m|mb|mib|g|gb|gib)", re.IGNORECASE)


def _size(value: Any) -> Any:
    """``"64MiB"``, ``"10m"``, ``"1g"`` or a plain number of bytes (binary units)."""
    if isinstance(value, str) and (m := _SIZE.fullmatch(value.strip())):
        unit = m.group(2).lower()[:1]
        return int(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[unit]
    return value


def _named(check: Callable[[str], object], value: str) -> None:
    """Run ``check``; its ConfigError becomes the ValueError pydantic names the flag in."""
    try:
        check(value)
    except ConfigError as exc:
        raise ValueError(exc.message) from None


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

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str | None) -> str | None:
        if value is not None:
            _named(parse_interval, value)
        return value

    def schedule(self) -> Schedule:
        """The schedule these flags describe."""
        return Schedule(
            interval=parse_interval(self.interval) if self.interval else None,
            max_rows=self.max_rows,
            max_bytes=self.max_bytes,
        )


class StoreSettings(ArchiveSettings, OciSettings):
    """Where dumps go and how to reach OCI Object Storage."""

    target: TargetText = Field(
        "file://./auditstream-dumps",
        description="oci://bucket@namespace/prefix, oci://bucket/prefix or file:///dir",
    )
    staging_dir: Path = Field(Path("auditstream-staging"), description="local dir for dumps")
    part_size: int = Field(128 << 20, ge=1, description="multipart part size (128MiB)")
    parallel_uploads: int = Field(3, ge=1, description="parts uploaded at once")
    oci_retries: int = Field(8, ge=1, description="attempts per OCI call (exponential backoff)")

    _sizes = field_validator("part_size", mode="before")(_size)

    seal_target: TargetText | None = Field(
        None,
        description="also write each signed checkpoint, create-only, under oci://... or "
        "file://... (a bucket with a retention rule, apart from the dumps)",
    )

    retention_min_days: float | None = Field(
        None,
        gt=0,
        description="require a time-bound retention rule of at least this many days on the "
        "bucket before the first upload (dumps and checkpoints)",
    )
    retention_policy: Literal["refuse", "warn"] = Field(
        "refuse", description="without such a rule: refuse to upload, or warn and upload"
    )

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


class RestoreSettings(StoreSettings):
    """``consumer restore``: load one table's dump back into the archive database."""

    table: str = Field(description="the rotated table: audit_data_YYYYmmdd_HHMMSS[_N]")
    into: str | None = Field(None, description="restore under this name (default: --table)")

    @field_validator("table")
    @classmethod
    def _table(cls, value: str) -> str:
        _named(sqlident.rotated_table, value)
        return value


def rotate_main(argv: Sequence[str]) -> int:
    """``consumer rotate``: without a schedule flag, rotate now unless ``audit_data`` is empty."""
    s = load(RotateSettings, argv, prog="consumer rotate", section="rotation")
    logsetup.setup(json=s.log_json)
    schedule = s.schedule()
    immediate = schedule == Schedule()
    dsn = s.archive()
    with archive_errors("connect", archive=str(dsn)):
        ledger = Ledger(mysql.connect(dsn))
        rotator = Rotator(mysql.connect(dsn), ledger, schedule, s.lock_wait_timeout)
    ledger.ensure()
    name = rotator.rotate(datetime.now(UTC), force=s.force, immediate=immediate)
    if name:
        print(name)
    return 0


def upload_main(argv: Sequence[str]) -> int:
    """``consumer upload``: dump, upload and verify every pending table.

    Exit code 0 when nothing failed and nothing is stuck; 3 when a failure will be retried; 5
    when a table needs an operator (docs/rotation.md), including tables stuck since earlier runs.
    """
    s = load(UploadSettings, argv, prog="consumer upload", section="upload")
    logsetup.setup(json=s.log_json)
    dsn = s.archive()
    target, store = s.store()
    now = datetime.now(UTC)
    with archive_errors("connect", archive=str(dsn)):
        ledger = Ledger(mysql.connect(dsn))
    try:
        ledger.ensure()
        if s.retry_stuck:
            ledger.unstick(None, now)
    finally:
        ledger.close()
    archiver = Archiver(
        dsn,
        store,
        target,
        s.staging_dir,
        method=s.method,
        keep_tables=s.keep_tables,
        chunk_rows=s.chunk_rows,
    )
    outcome = archiver.run(now, due_only=False)
    if outcome.skipped:
        log.info("another uploader is running; nothing done")
    for table in outcome.verified:
        print(f"verified {table}")
    for table, exc in outcome.failed.items():
        print(f"failed {table}: {exc}")
    shipper = s.shipper()
    if shipper is not None:
        for name in shipper.ship():
            print(f"sealed {name}")
    for used in (store, shipper.store if shipper is not None else None):
        if isinstance(used, RetentionGuard) and used.status is not None:
            print(f"retention: {used.status}")
    # Tables stuck since earlier runs are not retried, but never pass silently either.
    with archive_errors("connect", archive=str(dsn)):
        ledger = Ledger(mysql.connect(dsn))
    try:
        stuck = [e for e in ledger.all() if e.stuck and e.table not in outcome.failed]
    finally:
        ledger.close()
    for entry in stuck:
        print(f"stuck {entry.table} ({entry.state}): {entry.last_error}")
    return max(outcome.exit_code, 5 if stuck else 0)


def restore_main(argv: Sequence[str]) -> int:
    """``consumer restore``: load ``--table``'s dump from ``--target`` into the archive."""
    s = load(RestoreSettings, argv, prog="consumer restore", section="restore")
    logsetup.setup(json=s.log_json)
    target, store = s.store()
    rows = restore(store, target, s.table, s.archive(), s.staging_dir, into=s.into)
    print(f"restored {rows} rows into {s.into or s.table}")
    return 0


def build_rotation_task(
    dsn: MySQLDsn,
    *,
    interval: str | None = "1d",
    max_rows: int | None = None,
    max_bytes: int | None = None,
    upload: UploadSettings | None = None,
    every: timedelta = timedelta(seconds=30),
) -> RotationTask:
    """The consumer's rotation task; with ``upload`` it also dumps, uploads and verifies.

    Raises:
        ConfigError: the interval or the target is invalid.
    """
    schedule = Schedule(
        interval=parse_interval(interval) if interval else None,
        max_rows=max_rows,
        max_bytes=max_bytes,
    )
    archiver = None
    if upload is not None:
        target, store = upload.store()
        archiver = Archiver(
            dsn,
            store,
            target,
            upload.staging_dir,
            method=upload.method,
            keep_tables=upload.keep_tables,
            chunk_rows=upload.chunk_rows,
        )
    task = RotationTask(dsn, schedule, archiver, every)
    task.shipper = upload.shipper() if upload is not None else None
    return task


class RotationTask:
    """The consumer loop's periodic task: rotate when due; archive in a background thread.

    Args:
        dsn: the archive database.
        schedule: when to rotate.
        archiver: dumps and uploads rotated tables (None: rotate only; upload by cron).
        every: how often to check (rotation needs at most a few cheap queries).

    Trap: ``tick`` runs between batches and must stay short (a slow tick delays polls past
    ``max.poll.interval.ms`` and the member is evicted), hence the upload thread. Retriable
    errors are logged and retried on the next check; others propagate to the loop.
    """

    def __init__(
        self,
        dsn: MySQLDsn,
        schedule: Schedule,
        archiver: Archiver | None = None,
        every: timedelta = timedelta(seconds=30),
    ) -> None:
        self.dsn = dsn
        self.schedule = schedule
        self.archiver = archiver
        self.every = every
        self._next: datetime | None = None
        self._rotator: Rotator | None = None
        self._worker: threading.Thread | None = None
        #: writes the archive's checkpoints to the seal target after each archiving pass
        self.shipper: CheckpointShipper | None = None

    def tick(self, now: datetime) -> None:
        """Rotate if due; start an archiving pass unless one is still running."""
        if self._next is not None and now < self._next:
            return
        self._next = now + self.every
        try:
            if self._rotator is None:
                with archive_errors("connect", archive=str(self.dsn)):
                    ledger = Ledger(mysql.connect(self.dsn))
                    ledger.ensure()
                    self._rotator = Rotator(mysql.connect(self.dsn), ledger, self.schedule)
            self._rotator.rotate(now)
        except AuditStreamError as exc:
            if not exc.retriable:
                raise
            log.warning("rotation failed; retrying at the next check: %s", exc)
            self._rotator = None
        if self.archiver is not None and (self._worker is None or not self._worker.is_alive()):
            self._worker = threading.Thread(
                target=self._archive, args=(now,), name="archiver", daemon=True
            )
            self._worker.start()

    def close(self, timeout: float | None = None) -> None:
        """Wait for a running archiving pass to finish."""
        if self._worker is not None:
            self._worker.join(timeout)

    def _archive(self, now: datetime) -> None:
        assert self.archiver is not None  # noqa: S101
        try:
            self.archiver.run(now)
            if self.shipper is not None:
                self.shipper.ship()
        except AuditStreamError as exc:
            log.warning("archiving pass failed: %s", exc)
