"""Load a dump from a target back into a table, row for row.

Steps (``restore``):

1. Read ``manifest.json`` of ``<prefix>/<table>/`` from the target.
2. Download every data file into the staging directory, checking size and SHA-256 against the
   manifest while writing (a corrupt object stops the restore before any row is loaded).
3. Create the table ``LIKE audit_data_template`` (under another name with ``into``); an existing
   table must be empty, so a restore never mixes into live data. On an empty server (the archive
   host is gone: the case a restore exists for) the database and the template are created first,
   from the project's own DDL (``sql/archive/``), never from the manifest's.
4. ``LOAD DATA LOCAL INFILE`` each file (zstd chunks are decompressed to a file first) with the
   dialect the dump was written in.
5. Check the loaded row count against the manifest.

Trust: the manifest comes from object storage, outside the archive's trust boundary. Its table
name must be the one asked for, object names must be dump file names (they become local paths),
columns must be plain identifiers and a version of the project's DDL (the schema version it
claims, if any, must be theirs; ``consumer.schema``), checked in Step 1 before any download; its
DDL and dialect are never executed (our own are).

Trap: ``LOAD DATA LOCAL`` needs ``local_infile=ON`` on the server (MySQL 8 defaults to OFF) and
is enabled on the client only for this session, only for the staging directory.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path
from typing import Any

import zstandard

import sql
from auditstream import mysql, sqlident
from auditstream.dsn import MySQLDsn
from auditstream.errors import (
    ArchiveContentError,
    ArchiveError,
    ChecksumMismatch,
    ConfigError,
    ObjectStoreError,
)
from consumer.dumpformat import CSV_LOAD, MANIFEST, TSV_LOAD, Manifest, is_data, is_object_name
from consumer.ledger import archive_errors
from consumer.rotation import TEMPLATE
from consumer.schema import TEMPLATE_DDL, check_dump_columns, version_of
from consumer.targets import ObjectStore, TargetUrl

log = logging.getLogger(__name__)


def read_manifest(store: ObjectStore, target: TargetUrl, table: str) -> Manifest:
    """The manifest of ``table``'s dump in ``store``.

    Raises:
        ObjectStoreError: there is no dump of ``table`` at the target.
    """
    name = target.object_name(table, MANIFEST)
    if store.stat(name) is None:
        raise ObjectStoreError("no dump of this table at the target", table=table, object=name)
    return Manifest.from_json(b"".join(store.read(name)), name)


def restore(
    store: ObjectStore,
    target: TargetUrl,
    table: str,
    dsn: MySQLDsn,
    staging: Path,
    *,
    into: str | None = None,
) -> int:
    """Restore ``table``'s dump into ``into`` (default: ``table``); return the rows loaded.

    Raises:
        ChecksumMismatch: a downloaded file differs from the manifest.
        ArchiveContentError: the dump's columns do not fit the project's DDL or the archive's
            template (exit 5, nothing loaded).
        ArchiveError: the table exists and is not empty, or loading failed.
    """
    sqlident.rotated_table(table)
    dest = sqlident.ident(into or table)
    # Step 1
    manifest = read_manifest(store, target, table)
    _check(manifest, table)
    work = staging / f"restore-{table}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        # Step 2
        files = []
        for obj in manifest.objects:
            if not is_data(obj.name):
                continue
            path = work / obj.name
            h = hashlib.sha256()
            with path.open("wb") as out:
                for piece in store.read(target.object_name(table, obj.name)):
                    h.update(piece)
                    out.write(piece)
            if h.hexdigest() != obj.sha256 or path.stat().st_size != obj.size:
                raise ChecksumMismatch("downloaded file differs from the manifest", object=obj.name)
            if obj.name.endswith(".zst"):
                plain = path.with_suffix("")
                with path.open("rb") as src, plain.open("wb") as out:
                    zstandard.ZstdDecompressor().copy_stream(src, out)
                path.unlink()
                path = plain
            files.append(path)
        _ensure_schema(dsn)
        conn = mysql.connect(
            dsn, allow_local_infile=True, allow_local_infile_in_path=str(work.resolve())
        )
        try:
            return _load(conn, manifest, dest, files)
        finally:
            conn.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _check(manifest: Manifest, table: str) -> None:
    """The manifest comes from object storage: trust none of what reaches SQL or a path."""
    if manifest.table != table or manifest.method not in ("dump", "export"):
        raise ChecksumMismatch(
            "the manifest is not a dump of this table", table=table, manifest=manifest.table
        )
    for obj in manifest.objects:
        if not is_object_name(table, obj.name):
            raise ChecksumMismatch("unexpected object name in the manifest", object=obj.name)
    for column in manifest.columns:
        sqlident.ident(column)
    check_dump_columns(manifest.columns, manifest.schema_version, table=table)


def _ensure_schema(dsn: MySQLDsn) -> None:
    """Create the DSN's database and ``audit_data_template`` from ``sql/archive/`` if missing."""
    if not dsn.database:
        raise ConfigError("the archive DSN must name a database (e.g. /audit_archive)")
    with archive_errors("restore: creating the archive schema", database=dsn.database):
        conn = mysql.connect(dsn.with_database(None), autocommit=True)
        try:
            cur = conn.cursor()
            cur.execute(
                f"CREATE DATABASE IF NOT EXISTS {sqlident.ident(dsn.database)}"
                " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            )
            cur.execute(f"USE {sqlident.ident(dsn.database)}")
            for statement in sql.statements(TEMPLATE_DDL):
                cur.execute(statement)
        finally:
            conn.close()


def _check_template(cur: Any, manifest: Manifest, dest: str) -> None:
    """The archive's template must hold the dump's columns (an older one lacks new columns)."""
    cur.execute(f"SELECT * FROM {TEMPLATE} LIMIT 0")
    have = [str(d[0]) for d in cur.description or ()]
    cur.fetchall()
    if have[: len(manifest.columns)] != manifest.columns:
        raise ArchiveContentError(
            f"this archive's {TEMPLATE} lacks columns of the dump"
            f" (schema version {version_of(have)}; the dump's: {manifest.schema_version}):"
            " run `consumer setup` against it first",
            table=dest,
        )


def _load(conn: mysql.Connection, manifest: Manifest, dest: str, files: list[Path]) -> int:
    columns = ", ".join(sqlident.ident(c) for c in manifest.columns)
    dialect = TSV_LOAD if manifest.method == "dump" else CSV_LOAD
    with archive_errors("restore", table=dest):
        cur = conn.cursor()
        # Step 3
        _check_template(cur, manifest, dest)
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.tables"
            " WHERE table_schema = DATABASE() AND table_name = %s",
            (dest.strip("`"),),
        )
        exists = cur.fetchall()[0][0]  # type: ignore[index]
        if exists:
            cur.execute(f"SELECT 1 FROM {dest} LIMIT 1")
            if cur.fetchall():
                raise ArchiveError("restore target table exists and is not empty", table=dest)
        else:
            cur.execute(f"CREATE TABLE {dest} LIKE {TEMPLATE}")
        # Step 4
        for path in files:
            cur.execute(
                f"LOAD DATA LOCAL INFILE %s INTO TABLE {dest} CHARACTER SET utf8mb4"
                f" {dialect} ({columns})",
                (str(path.resolve()),),
            )
            log.info("loaded", extra={"ctx": {"table": dest, "file": path.name}})
        conn.commit()
        # Step 5
        cur.execute(f"SELECT COUNT(*) FROM {dest}")
        loaded = int(cur.fetchall()[0][0])  # type: ignore[index,arg-type]
        conn.commit()
    if loaded != manifest.rows:
        raise ArchiveError(
            "restored row count differs from the manifest",
            table=dest,
            rows=loaded,
            expected=manifest.rows,
        )
    return loaded
