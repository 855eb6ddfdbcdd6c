"""Operator entry points: ``python -m consumer rotate|upload|restore`` (and ``auditstream ...``).

Each builds its settings (``consumer.opsconfig``) with ``auditstream.settings.load``, runs one
pass and prints what it did. The consumer's own periodic task is ``consumer.rotationtask``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime

from auditstream import log as logsetup
from auditstream import mysql
from auditstream.settings import load
from consumer.ledger import Ledger, archive_errors
from consumer.opsconfig import RestoreSettings, RotateSettings, UploadSettings
from consumer.restore import restore
from consumer.retention import RetentionGuard
from consumer.rotation import Rotator, Schedule

log = logging.getLogger("consumer.ops")


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
    archiver = s.archiver(dsn)
    now = datetime.now(UTC)
    with archive_errors("connect", archive=str(dsn)):
        ledger = Ledger(mysql.connect(dsn))
    try:
        ledger.ensure()
        if s.retry_stuck:
            ledger.unstick(None, now)
    finally:
        ledger.close()
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
    for used in (archiver.store, shipper.store if shipper is not None else None):
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
