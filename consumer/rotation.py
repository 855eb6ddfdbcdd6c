"""Rotation: swap ``audit_data`` for an empty table, atomically, on a UTC schedule or a size limit.

The guarantee, in steps (``Rotator.rotate``; the ``# Step N`` comments match):

1. Take the group-wide named lock (``GET_LOCK``, MySQL 8 and MariaDB alike) without waiting:
   if another rotator holds it, that one acts and this one returns.
2. Adopt orphans: a rotated table without a ledger row (a crash fell between the RENAME and the
   ledger insert) gets its row now, so nothing rotated is ever forgotten.
3. Decide: due by the schedule or a threshold (``immediate``: now), and not empty (``force``
   skips both checks). The schedule is the wall clock's: the ledger records the UTC period
   ``audit_data`` belongs to (``audit_rotation_period``; the first look at an archive records
   the current one), and a rotation is due once ``now`` lies in a later period. Event times
   play no part: a backfill of last month's events stays in ``audit_data`` until the next
   boundary. Due but empty: the recorded period moves on, nothing is rotated.
4. Name the new table from the UTC clock (``audit_data_YYYYmmdd_HHMMSS``), adding ``_N`` when the
   name exists or ever existed (the ledger remembers dropped ones: object names derive from it).
5. ``CREATE TABLE audit_data_new LIKE audit_data_template``; then ONE statement
   ``RENAME TABLE audit_data TO <name>, audit_data_new TO audit_data``: no instant without an
   ``audit_data``, no insert lost; inserts only wait while the rename holds the metadata lock.
6. Record ``rotated`` in the ledger and, in the same transaction, the period the new
   ``audit_data`` belongs to; release the lock. (A crash between steps 5 and 6 leaves the old
   period recorded: the next tick adopts the table and may rotate once more. Nothing is lost.)

Traps: RENAME waits for every open transaction on ``audit_data`` and, while it waits, new inserts
queue behind it. The session's ``lock_wait_timeout`` is therefore short: a rotation that cannot get
the lock fails (and is retried at the next tick) instead of stalling the consumers. Table sizes come
from ``information_schema`` statistics, which InnoDB updates lazily: ``max_bytes`` is approximate.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from auditstream import metrics, mysql, sqlident
from auditstream.errors import ArchiveError, ConfigError
from auditstream.text import as_text
from consumer.ledger import Ledger, archive_errors

log = logging.getLogger(__name__)

LIVE = "audit_data"
NEW = "audit_data_new"
TEMPLATE = "audit_data_template"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INTERVAL = re.compile(r"(\d+)\s*([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_interval(text: str) -> timedelta:
    """``"15m"``, ``"1h"``, ``"1d"``, ``"1w"`` → a timedelta.

    Raises:
        ConfigError: not ``<number><s|m|h|d|w>`` or zero.
    """
    match = _INTERVAL.fullmatch(text.strip().lower())
    if not match or int(match.group(1)) == 0:
        raise ConfigError("an interval looks like 30m, 1h or 1d", interval=text)
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


@dataclass(frozen=True)
class Schedule:
    """When to rotate.

    Every ``interval`` (aligned to UTC multiples of it since the epoch, so ``1d`` means 00:00
    UTC) and/or once ``audit_data`` reaches ``max_rows`` rows or ``max_bytes`` bytes.
    """

    interval: timedelta | None = None
    max_rows: int | None = None
    max_bytes: int | None = None

    def period_start(self, now: datetime) -> datetime:
        """The start of the interval ``now`` falls in (``now`` itself without an interval)."""
        if self.interval is None:
            return now
        step = self.interval.total_seconds()
        elapsed = (now - _EPOCH).total_seconds()
        return _EPOCH + timedelta(seconds=(elapsed // step) * step)


def lock_name(database: str) -> str:
    """The ``GET_LOCK`` name for ``database`` (lock names are server-wide and at most 64 chars)."""
    return "auditstream.rotate." + hashlib.sha256(database.encode()).hexdigest()[:32]


class Rotator:
    """Rotates ``audit_data`` in the archive database.

    Args:
        conn: a session used only by rotation (it runs DDL, which commits implicitly).
        ledger: the ledger, on another session.
        schedule: when rotation is due.
        lock_wait_timeout: seconds the RENAME may wait for running inserts to finish.
    """

    def __init__(
        self, conn: mysql.Connection, ledger: Ledger, schedule: Schedule, lock_wait_timeout: int = 5
    ) -> None:
        conn.autocommit = True  # a read left open would hold a metadata lock other RENAMEs wait on
        self._conn = conn
        self._ledger = ledger
        self._schedule = schedule
        self._lock_wait_timeout = lock_wait_timeout

    def rotate(self, now: datetime, *, force: bool = False, immediate: bool = False) -> str | None:
        """Rotate if due; return the rotated table's name, or None.

        ``immediate`` skips the schedule but not the empty check (an operator's or cron's
        "rotate now"); ``force`` skips both.

        Raises:
            ArchiveError: the database failed; nothing half-done stays behind that the next
                call does not finish or undo.
        """
        database = self._scalar("SELECT DATABASE()")
        if not database:
            raise ConfigError("the archive DSN must select a database")
        lock = lock_name(as_text(database))
        # Step 1
        if self._scalar("SELECT GET_LOCK(%s, 0)", (lock,)) != 1:
            log.info("another rotator holds the lock; skipping", extra={"ctx": {"lock": lock}})
            return None
        try:
            # Step 2
            self.adopt(now)
            # Step 3
            reason = "forced" if force else "now" if immediate else self.due(now)
            if reason is None:
                return None
            if not force and self._scalar(f"SELECT 1 FROM {LIVE} LIMIT 1") is None:
                log.info("audit_data is empty; not rotating")
                if reason == "schedule":  # the empty table belongs to the new period
                    self._ledger.set_period(self._schedule.period_start(now), now)
                return None
            # Step 4
            name = self._unique_name(now)
            # Step 5
            with archive_errors("rotation", table=name):
                cur = self._conn.cursor()
                cur.execute(f"SET SESSION lock_wait_timeout = {int(self._lock_wait_timeout)}")
                cur.execute(f"DROP TABLE IF EXISTS {NEW}")
                cur.execute(f"CREATE TABLE {NEW} LIKE {TEMPLATE}")
                cur.execute(
                    f"RENAME TABLE {LIVE} TO {sqlident.rotated_table(name)}, {NEW} TO {LIVE}"
                )
            # Step 6
            self._ledger.record_rotated(name, now, now, period=self._schedule.period_start(now))
            metrics.ROTATIONS.inc()
            log.info("rotated", extra={"ctx": {"table": name, "reason": reason}})
            return name
        finally:
            with contextlib.suppress(ArchiveError):  # a lost session has released it already
                self._scalar("SELECT RELEASE_LOCK(%s)", (lock,))

    def due(self, now: datetime) -> str | None:
        """Why rotation is due now (``"schedule"``, ``"rows"``, ``"bytes"``), or None."""
        schedule = self._schedule
        if schedule.max_rows:
            count = self._scalar(
                f"SELECT COUNT(*) FROM (SELECT 1 FROM {LIVE} LIMIT %s) AS t", (schedule.max_rows,)
            )
            if int(str(count or 0)) >= schedule.max_rows:
                return "rows"
        if schedule.max_bytes:
            size = self._scalar(
                "SELECT data_length + index_length FROM information_schema.tables"
                " WHERE table_schema = DATABASE() AND table_name = %s",
                (LIVE,),
            )
            if int(str(size or 0)) >= schedule.max_bytes:
                return "bytes"
        if schedule.interval is not None and schedule.period_start(now) > self.period(now):
            return "schedule"
        return None

    def period(self, now: datetime) -> datetime:
        """The start of the period ``audit_data`` belongs to, as the ledger records it.

        Unrecorded (a new archive, or one from before the record existed): the period of the
        last rotation, or else the current one; it is recorded now, so the first boundary the
        wall clock crosses from here is the first scheduled rotation. Never an event's time.
        """
        recorded = self._ledger.period()
        if recorded is None:
            last = self._ledger.last_rotated_at()
            first = self._schedule.period_start(last if last is not None else now)
            self._ledger.set_period(first, now, only_if_unset=True)
            recorded = self._ledger.period() or first  # another rotator's, if it was quicker
        return recorded

    def adopt(self, now: datetime) -> list[str]:
        """Give every rotated table that has no ledger row one (state ``rotated``)."""
        known = self._ledger.names()
        adopted = []
        for name in sorted(self.rotated_tables() - known):
            match = sqlident.ROTATED_TABLE.fullmatch(name)
            assert match is not None  # noqa: S101 - rotated_tables() filtered by this regex
            stamp = datetime.strptime(match.group(1), "%Y%m%d_%H%M%S").replace(tzinfo=UTC)
            self._ledger.record_rotated(name, stamp, now)
            adopted.append(name)
            log.warning(
                "adopted a rotated table the ledger did not know", extra={"ctx": {"table": name}}
            )
        return adopted

    def rotated_tables(self) -> set[str]:
        """Names of the rotated tables that exist in the archive database."""
        with archive_errors("listing rotated tables"):
            cur = self._conn.cursor()
            cur.execute(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = DATABASE() AND table_name LIKE %s",
                ("audit\\_data\\_%",),
            )
            names = {as_text(row[0]) for row in cur.fetchall()}  # type: ignore[index]
        return {n for n in names if sqlident.ROTATED_TABLE.fullmatch(n)}

    def _unique_name(self, now: datetime) -> str:
        base = "audit_data_" + now.astimezone(UTC).strftime("%Y%m%d_%H%M%S")
        taken = self.rotated_tables() | self._ledger.names()
        for n in range(1000):
            name = base if n == 0 else f"{base}_{n}"
            if name not in taken:
                sqlident.rotated_table(name)
                return name
        raise ArchiveError("more than 1000 rotations in one second", table=base)

    def _scalar(self, stmt: str, params: tuple[Any, ...] = ()) -> object:
        with archive_errors("rotation query"):
            cur = self._conn.cursor()
            cur.execute(stmt, params)
            row = cur.fetchone()
            cur.fetchall()
        return None if row is None else row[0]  # type: ignore[index]
