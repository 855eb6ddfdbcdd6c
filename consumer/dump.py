r"""Dump a rotated table to local files, streamed and chunked by primary key, with a manifest.

Two methods, as the predecessor offered them (without needing MySQL Shell):

* ``dump``: ``<table>@<n>.tsv.zst`` chunks (zstd; tab-separated, ``\\``-escaped, ``\\N`` for NULL:
  exactly what ``LOAD DATA ... FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\'`` reads), the table's
  DDL ``<table>.sql`` and a metadata file ``<table>.json`` (columns, dialect, chunks).
* ``export``: one ``<table>.csv`` (``,`` separated, strings enclosed in ``"``, ``\\`` escapes,
  ``\\N`` for NULL, ``\\r\\n`` line ends: MySQL Shell's ``csv`` dialect).

Each dump ends with ``manifest.json``: table, method, row count, the bookmark range per server
(first and last ``(ts, id)`` of each ``server_uuid``), the columns' schema version
(``consumer.schema``), and every other file's size and SHA-256. The format itself (names,
manifest, escaping) is ``consumer.dumpformat``'s; this module reads the table and writes it.

Steps (``dump_table``):

1. Empty the staging directory of the table (a crashed dump leaves partial files).
2. Read the table in primary-key order, one page at a time (keyset paging, pages bounded in
   rows and bytes: the table is never in memory, only one page and the compressor's window).
3. Write each page into the current chunk; start a new chunk after ``chunk_rows`` rows.
4. Write the metadata, then ``manifest.json`` last: a manifest means the dump is complete.

The output is deterministic (same rows → same bytes), so a dump lost with its staging directory
can be redone and still match the ledger's manifest checksum. Trap: ``ENOSPC`` anywhere becomes an
``ObjectStoreError`` naming the staging directory; the partial files stay until the next attempt.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import zstandard

from auditstream import mysql, sqlident
from auditstream.errors import ArchiveError, ObjectStoreError
from auditstream.text import as_text
from consumer.dumpformat import (
    CSV,
    MANIFEST,
    TSV,
    DumpEvent,
    DumpObject,
    Manifest,
    chunk_name,
    csv_bytes,
    ddl_name,
    event_reader,
    export_name,
    meta_name,
    tsv_bytes,
)
from consumer.schema import version_of

PAGE_BYTES = 16 << 20
# MySQL protocol column types of numbers (FieldType.get_number_types(): DECIMAL, TINY, SHORT,
# LONG, FLOAT, DOUBLE, LONGLONG, INT24, YEAR, BIT, NEWDECIMAL): written unquoted in CSV.
_NUMERIC = {0, 1, 2, 3, 4, 5, 8, 9, 13, 16, 246}

Opener = Callable[[Path], IO[bytes]]


class _HashingWriter:
    """A write-only file that counts and hashes what goes through it."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.size = 0
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.raw.write(data)
        self.hash.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.raw.flush()


def _open(path: Path) -> IO[bytes]:
    return path.open("wb")


def dump_table(
    conn: mysql.Connection,
    table: str,
    out_dir: Path,
    *,
    method: str = "dump",
    chunk_rows: int = 250_000,
    page_rows: int = 2_000,
    level: int = 3,
    opener: Opener = _open,
) -> Manifest:
    """Dump ``table`` into ``out_dir`` (created; emptied first) and return its manifest.

    Raises:
        ArchiveError: the table cannot be read (``context`` says whether it is gone).
        ObjectStoreError: the staging directory cannot be written (full disk, permissions).
    """
    quoted = sqlident.rotated_table(table)
    if method not in ("dump", "export"):
        raise ValueError(f"unknown method {method!r}")
    writer: _Chunk | None = None
    try:
        # Step 1
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
        try:
            cur = conn.cursor()
            cur.execute(f"SHOW CREATE TABLE {quoted}")
            ddl = as_text(cur.fetchall()[0][1])  # type: ignore[index]  # bytes on some servers
            cur.execute(f"SELECT * FROM {quoted} LIMIT 0")
            columns = [as_text(d[0]) for d in cur.description or ()]
            numeric = [d[1] in _NUMERIC for d in cur.description or ()]
            cur.fetchall()
            conn.commit()
        except mysql.Error as exc:
            raise _read_error(exc, table) from exc
        objects: list[DumpObject] = []
        bookmarks: dict[str, dict[str, Any]] = {}
        rows = 0

        def line(row: Sequence[bytes | None]) -> bytes:
            return tsv_bytes(row) if method == "dump" else csv_bytes(row, numeric)

        event: Callable[[Sequence[bytes | None]], DumpEvent[bytes]] = event_reader(columns)
        chunk_names: list[str] = []
        # Step 2
        for page in _pages(conn, quoted, table, columns, page_rows):
            for row in page:
                # Step 3
                if writer is None:
                    n = len(chunk_names)
                    name = chunk_name(table, n) if method == "dump" else export_name(table)
                    chunk_names.append(name)
                    writer = _Chunk(out_dir / name, opener, level if method == "dump" else None)
                writer.write(line(row))
                _track(bookmarks, event(row))
                rows += 1
                if method == "dump" and writer.rows >= chunk_rows:
                    objects.append(writer.close())
                    writer = None
        if writer is None and method == "export":
            chunk_names.append(export_name(table))
            writer = _Chunk(out_dir / chunk_names[-1], opener, None)
        if writer is not None:
            objects.append(writer.close())
            writer = None
        # Step 4
        dialect = TSV if method == "dump" else CSV
        if method == "dump":
            objects.append(_write(out_dir / ddl_name(table), (ddl + ";\n").encode(), opener))
            meta = {"table": table, "columns": columns, "dialect": dialect, "chunks": chunk_names}
            meta_bytes = (json.dumps(meta, sort_keys=True, indent=2) + "\n").encode()
            objects.append(_write(out_dir / meta_name(table), meta_bytes, opener))
        manifest = Manifest(
            table=table,
            method=method,
            rows=rows,
            bookmarks=bookmarks,
            columns=columns,
            ddl=ddl,
            dialect=dialect,
            compression="zstd" if method == "dump" else "none",
            objects=objects,
            schema_version=version_of(columns),
        )
        _write(out_dir / MANIFEST, manifest.to_json(), opener)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise ObjectStoreError(
                "the staging disk is full: free space or point --staging-dir elsewhere",
                table=table,
                staging=str(out_dir),
            ) from exc
        raise ObjectStoreError(
            f"cannot write the dump: {exc}", table=table, staging=str(out_dir)
        ) from exc
    finally:
        if writer is not None:
            writer.discard()
    return manifest


class _Chunk:
    """One output file, optionally zstd-compressed, hashed as written."""

    def __init__(self, path: Path, opener: Opener, level: int | None) -> None:
        self.path = path
        self.rows = 0
        self._raw = opener(path)
        self._hashed = _HashingWriter(self._raw)
        self._zstd: Any = None
        if level is not None:
            self._zstd = zstandard.ZstdCompressor(level=level).stream_writer(
                self._hashed,  # type: ignore[arg-type]  # any object with write() will do
                closefd=False,
            )

    def write(self, data: bytes) -> None:
        (self._zstd or self._hashed).write(data)
        self.rows += 1

    def discard(self) -> None:
        """Close the file after a failure (its content is incomplete)."""
        with contextlib.suppress(OSError):
            self._raw.close()

    def close(self) -> DumpObject:
        if self._zstd is not None:
            self._zstd.close()
        self._raw.flush()
        self._raw.close()
        return DumpObject(self.path.name, self._hashed.size, self._hashed.hash.hexdigest())


def _write(path: Path, data: bytes, opener: Opener) -> DumpObject:
    with opener(path) as f:
        f.write(data)
    return DumpObject(path.name, len(data), hashlib.sha256(data).hexdigest())


def _pages(
    conn: mysql.Connection,
    quoted: str,
    table: str,
    columns: list[str],
    page_rows: int,
    page_bytes: int = PAGE_BYTES,
) -> Iterator[list[tuple[Any, ...]]]:
    """Pages of rows in primary-key order (keyset paging on ``(server_uuid, ts, id)``).

    Rows are the server's text of each value (a ``raw`` cursor: no conversion to Python types
    and back, and exactly the text ``LOAD DATA`` reads); NULL is None. A page holds at most
    ``page_rows`` rows and, going by the previous page's average row size, about ``page_bytes``
    bytes: events reach 4 MB, so a fixed row count alone bounds nothing.
    """
    event: Callable[[Sequence[bytes | None]], DumpEvent[bytes]] = event_reader(columns)
    select = f"SELECT * FROM {quoted}"
    after = " WHERE server_uuid > %s OR (server_uuid = %s AND (ts > %s OR (ts = %s AND id > %s)))"
    last: tuple[Any, ...] | None = None
    limit = 1  # the first page measures the rows
    while True:
        order = f" ORDER BY server_uuid, ts, id LIMIT {int(limit)}"
        try:
            cur = conn.cursor(raw=True)
            if last is None:
                cur.execute(select + order)
            else:
                key = event(last)
                u, t, i = as_text(key.server_uuid), as_text(key.ts), int(as_text(key.id))
                cur.execute(select + after + order, (u, u, t, t, i))
            page: list[tuple[Any, ...]] = list(cur.fetchall())  # type: ignore[arg-type]
            conn.commit()
        except mysql.Error as exc:
            raise _read_error(exc, table) from exc
        if not page:
            return
        sample = page[:: max(1, len(page) // 50)]  # ~50 rows tell the average well enough
        size = len(page) * sum(len(v) for r in sample for v in r if v is not None)
        size //= len(sample)
        limit = max(1, min(page_rows, page_bytes * len(page) // max(size, 1)))
        yield page
        last = page[-1]


def _read_error(exc: Exception, table: str) -> ArchiveError:
    """``context["gone"]`` is True when the table does not exist (dropped by hand)."""
    gone = getattr(exc, "errno", None) == mysql.errorcode.ER_NO_SUCH_TABLE
    return ArchiveError(f"cannot read the rotated table: {exc}", table=table, gone=gone or None)


def _track(bookmarks: dict[str, dict[str, Any]], event: DumpEvent[bytes]) -> None:
    """Per server: first and last ``(ts, id)``, rows, and the chain's ends (if chained).

    The chain's ends let consecutive dumps link up (docs/tamper-evidence.md).
    """
    point = [as_text(event.ts), int(as_text(event.id))]
    entry = bookmarks.setdefault(
        as_text(event.server_uuid), {"min": point, "max": point, "rows": 0}
    )
    entry["max"] = point
    entry["rows"] += 1
    if event.chain_seq is not None and event.chain is not None:
        link = [int(as_text(event.chain_seq)), as_text(event.chain)]
        entry.setdefault("first_link", link)
        entry["last_link"] = link
