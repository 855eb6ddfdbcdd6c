"""Drive every rotated table through the ledger: dump → upload → verify (→ drop).

The guarantee, per table (``Archiver.process``; the ``# Step N`` comments match):

1. ``rotated``: dump the table into ``<staging>/<table>/`` (``consumer.dump``), then record
   ``dumped`` with the row count, bookmark ranges, objects, sizes and checksums. A table that is
   gone (dropped by hand) and was never dumped becomes ``missing``: a clear state, never a loop.
2. ``dumped``: make sure the staged dump is the one the ledger recorded (a lost staging directory
   is re-dumped, and must reproduce the recorded manifest checksum), then write every object
   create-only, data first and ``manifest.json`` last. An object that already exists is verified
   instead of written: after a crash it is our own; anything else is a conflict (stuck).
   Record ``uploaded``.
3. ``uploaded``: verify every object against the manifest (size and SHA-256); record
   ``verified``; delete the staging directory.
4. Retention (``keep_tables``): drop verified tables beyond the newest N rotated ones; record
   ``dropped``. Only a verified table is ever dropped.

Any step may crash and simply runs again: each transition is conditional on the state it leaves,
writes are create-only with deterministic names, and the dump is deterministic. A failed step
records the error and a backoff in the ledger; a non-retriable one marks the row stuck.

One archiver acts at a time per archive database (a ``GET_LOCK`` of its own), so two uploaders
never race on the same objects.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from auditstream import metrics, mysql, sqlident
from auditstream.dsn import MySQLDsn
from auditstream.errors import (
    ArchiveContentError,
    ArchiveError,
    AuditStreamError,
    ChecksumMismatch,
)
from consumer.dump import dump_table
from consumer.dumpformat import MANIFEST, DumpObject, Manifest
from consumer.ledger import Entry, Ledger, archive_errors
from consumer.rotation import Rotator, Schedule
from consumer.targets import ObjectStore, TargetUrl, verify

log = logging.getLogger(__name__)

#: ``hook(table, point)`` is called at every step boundary (tests raise there to simulate crashes).
Hook = Callable[[str, str], None]


@dataclass
class Outcome:
    """What one pass did: tables per final state, and errors by table."""

    verified: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    failed: dict[str, AuditStreamError] = field(default_factory=dict)
    skipped: bool = False

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, else the highest ``exit_code`` of the errors."""
        return max((e.exit_code for e in self.failed.values()), default=0)


class Archiver:
    """Moves pending ledger rows forward; see the module docstring for the steps.

    Args:
        dsn: the archive database.
        store: where objects go (``FileStore`` / ``OciStore``).
        target: the target URL (prefix and naming).
        staging: local directory for dumps (one subdirectory per table).
        method: ``dump`` or ``export`` for tables not dumped yet.
        keep_tables: retention: keep the newest N rotated tables, drop older verified ones.
        chunk_rows: rows per dump chunk.
        hook: called at every step boundary (tests).
    """

    def __init__(
        self,
        dsn: MySQLDsn,
        store: ObjectStore,
        target: TargetUrl,
        staging: Path,
        *,
        method: str = "dump",
        keep_tables: int | None = None,
        chunk_rows: int = 250_000,
        hook: Hook | None = None,
    ) -> None:
        self.dsn = dsn
        self.store = store
        self.target = target
        self.staging = staging
        self.method = method
        self.keep_tables = keep_tables
        self.chunk_rows = chunk_rows
        self._hook = hook or (lambda table, point: None)

    def run(self, now: datetime, *, due_only: bool = True) -> Outcome:
        """One pass over the pending tables (only those due for a retry unless ``due_only``).

        Failures of single tables are recorded in the ledger and returned in the outcome.

        Raises:
            ArchiveError: the archive database is unreachable (nothing was changed).
        """
        outcome = Outcome()
        with archive_errors("connect", archive=str(self.dsn)):
            conn = mysql.connect(self.dsn, autocommit=True)
            ledger = Ledger(mysql.connect(self.dsn))
        try:
            rotator = Rotator(conn, ledger, Schedule())
            lock = (
                "auditstream.upload."
                + hashlib.sha256(str(self.dsn.database).encode()).hexdigest()[:32]
            )
            with archive_errors("upload lock"):
                cur = conn.cursor()
                cur.execute("SELECT GET_LOCK(%s, 0)", (lock,))
                if cur.fetchall()[0][0] != 1:  # type: ignore[index]
                    outcome.skipped = True
                    return outcome
            try:
                rotator.adopt(now)
                pending = ledger.pending(
                    now if due_only else datetime.max.replace(tzinfo=now.tzinfo)
                )
                for entry in pending:
                    self.process(conn, ledger, entry, now, outcome)
                if self.keep_tables is not None:
                    self._retention(conn, ledger, rotator, now, outcome)
            finally:
                with contextlib.suppress(mysql.Error):  # a lost session has released it already
                    cur = conn.cursor()
                    cur.execute("SELECT RELEASE_LOCK(%s)", (lock,))
                    cur.fetchall()
        finally:
            conn.close()
            ledger.close()
        return outcome

    def process(
        self, conn: mysql.Connection, ledger: Ledger, entry: Entry, now: datetime, out: Outcome
    ) -> None:
        """Move one table as far as it goes; record a failure in the ledger instead of raising."""
        table = entry.table
        step = "dump"
        try:
            # Step 1
            if entry.state == "rotated" and not self._dump(conn, ledger, entry, now):
                return
            current = ledger.get(table)
            assert current is not None  # noqa: S101 - rows are never deleted
            # Step 2
            step = "upload"
            if current.state == "dumped":
                self._upload(conn, current)
                ledger.advance(table, "dumped", "uploaded", now)
                self._hook(table, "uploaded")
                current = ledger.get(table)
                assert current is not None  # noqa: S101
            # Step 3
            step = "verify"
            if current.state == "uploaded":
                for obj in _objects(current):
                    name = self.target.object_name(table, obj.name)
                    verify(self.store, name, obj, self.staging / table / obj.name)
                ledger.advance(table, "uploaded", "verified", now)
                self._hook(table, "verified")
                shutil.rmtree(self.staging / table, ignore_errors=True)
                out.verified.append(table)
                metrics.UPLOADS.inc()
                log.info("verified", extra={"ctx": {"table": table, "target": str(self.target)}})
        except AuditStreamError as exc:
            ledger.fail(table, exc, now, retriable=exc.retriable)
            out.failed[table] = exc
            metrics.STEP_FAILURES.labels(step).inc()
            log.warning(
                "archiving step failed: %s",
                exc,
                extra={"ctx": {"table": table, "retriable": exc.retriable}},
            )

    def _dump(self, conn: mysql.Connection, ledger: Ledger, entry: Entry, now: datetime) -> bool:
        table = entry.table
        try:
            manifest = dump_table(
                conn, table, self.staging / table, method=self.method, chunk_rows=self.chunk_rows
            )
        except ArchiveError as exc:
            if exc.context.get("gone"):
                ledger.advance(table, "rotated", "missing", now)
                raise ArchiveContentError(
                    "the rotated table is gone (dropped by hand?) and was never dumped",
                    table=table,
                ) from exc
            raise
        self._hook(table, "dump-written")
        data = manifest.to_json()
        objects = [*manifest.objects, DumpObject(MANIFEST, len(data), _sha(data))]
        ledger.advance(
            table,
            "rotated",
            "dumped",
            now,
            method=manifest.method,
            target=str(self.target),
            row_count=manifest.rows,
            total_bytes=sum(o.size for o in objects),
            manifest_sha256=_sha(data),
            bookmarks=manifest.bookmarks,
            objects=[o.__dict__ for o in objects],
        )
        self._hook(table, "dumped")
        metrics.DUMPS.labels(manifest.method).inc()
        return True

    def _upload(self, conn: mysql.Connection, entry: Entry) -> None:
        table = entry.table
        if entry.target and entry.target != str(self.target):
            raise ChecksumMismatch(
                "this table's upload started at another target; finish it there",
                table=table,
                target=entry.target,
            )
        self._ensure_staged(conn, entry)
        for obj in _objects(entry):
            name = self.target.object_name(table, obj.name)
            if not self.store.put_file(name, self.staging / table / obj.name, obj):
                # ours from before a crash, or a conflict
                verify(self.store, name, obj, self.staging / table / obj.name)
                log.info("object already there and matches", extra={"ctx": {"object": name}})
            self._hook(table, f"put:{obj.name}")

    def _ensure_staged(self, conn: mysql.Connection, entry: Entry) -> None:
        path = self.staging / entry.table / MANIFEST
        if path.exists() and _sha(path.read_bytes()) == entry.manifest_sha256:
            return
        log.warning("staged dump lost; dumping again", extra={"ctx": {"table": entry.table}})
        manifest = dump_table(
            conn,
            entry.table,
            self.staging / entry.table,
            method=entry.method or self.method,
            chunk_rows=self.chunk_rows,
        )
        if _sha(manifest.to_json()) != entry.manifest_sha256:
            raise ChecksumMismatch(
                "a new dump differs from the recorded one (table changed since?)",
                table=entry.table,
            )

    def _retention(
        self, conn: mysql.Connection, ledger: Ledger, rotator: Rotator, now: datetime, out: Outcome
    ) -> None:
        assert self.keep_tables is not None  # noqa: S101
        existing = rotator.rotated_tables()
        entries = [e for e in ledger.all() if e.table in existing or e.state == "verified"]
        old = entries[: max(0, len(entries) - self.keep_tables)]
        for entry in old:
            if entry.state != "verified" or entry.stuck:
                continue
            with archive_errors("retention drop", table=entry.table):
                conn.cursor().execute(f"DROP TABLE IF EXISTS {sqlident.rotated_table(entry.table)}")
            self._hook(entry.table, "table-dropped")
            ledger.advance(entry.table, "verified", "dropped", now)
            out.dropped.append(entry.table)
            log.info("dropped after verification", extra={"ctx": {"table": entry.table}})


def _objects(entry: Entry) -> list[DumpObject]:
    """The ledger's objects, data first and ``manifest.json`` last."""
    objs = [DumpObject(**o) for o in entry.objects]
    return sorted(objs, key=lambda o: o.name == MANIFEST)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


__all__ = ["Archiver", "Hook", "Manifest", "Outcome"]
