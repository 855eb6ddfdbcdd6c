"""The consumer's periodic rotation task: rotate inline, dump and upload in a background thread.

``build_rotation_task`` wires it from the consumer's flags (``consumer.__main__``); rotation is
quick, so ``RotationTask.tick`` runs it between batches, while an archiving pass (dump, upload,
verify, checkpoints) runs in a thread of its own.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from auditstream import mysql
from auditstream.dsn import MySQLDsn
from auditstream.errors import AuditStreamError
from consumer.archiver import Archiver
from consumer.ledger import Ledger, archive_errors
from consumer.opsconfig import UploadSettings
from consumer.rotation import Rotator, Schedule, parse_interval
from consumer.seals import CheckpointShipper

log = logging.getLogger("consumer.rotationtask")


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
    archiver = upload.archiver(dsn) if upload is not None else None
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
        refused: AuditStreamError | None = None
        try:
            self.archiver.run(now)
            if self.shipper is not None:
                self.shipper.ship()
        except AuditStreamError as exc:
            if exc.retriable:
                log.warning("archiving pass failed; retrying at the next pass: %s", exc)
            else:
                refused = exc
        if refused is not None:  # no rule long enough, a name taken by other bytes: retrying
            # cannot mend it (the pass still runs again, so a rule added later is found)
            log.error("archiving pass refused; an operator must act: %s", refused)
