"""Dump and export: streamed, chunked by primary key, with a manifest; loadable with LOAD DATA."""

from __future__ import annotations

import errno
import hashlib
import json
from pathlib import Path
from typing import IO

import pytest
import zstandard

from auditstream import mysql
from auditstream.dsn import MySQLDsn
from auditstream.errors import ArchiveError, ObjectStoreError
from consumer.dump import dump_table
from consumer.dumpformat import MANIFEST, Manifest
from tests.harness.oci_fixtures import insert_rows, table_rows

TABLE = "audit_data_20260101_000000"
UUID_A = "3b3c2d2e-0000-11ee-8000-00000000000a"
UUID_B = "3b3c2d2e-0000-11ee-8000-00000000000b"


def _unzstd(path: Path) -> bytes:
    return zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes())


def _rotated(dsn: MySQLDsn, n_a: int, n_b: int) -> None:
    conn = mysql.connect(dsn, autocommit=True)
    conn.cursor().execute(f"CREATE TABLE {TABLE} LIKE audit_data_template")
    conn.close()
    insert_rows(dsn, n_a, table=TABLE, server_uuid=UUID_A)
    insert_rows(dsn, n_b, table=TABLE, server_uuid=UUID_B, start=1000)


def test_dump_chunks_manifest_and_bookmarks(archive_dsn: MySQLDsn, tmp_path: Path) -> None:
    _rotated(archive_dsn, 250, 40)
    conn = mysql.connect(archive_dsn)
    manifest = dump_table(conn, TABLE, tmp_path / TABLE, chunk_rows=100, page_rows=37)
    conn.close()

    out = tmp_path / TABLE
    chunks = sorted(p.name for p in out.glob("*.tsv.zst"))
    assert chunks == [f"{TABLE}@{i}.tsv.zst" for i in range(3)]
    assert manifest.rows == 290
    assert manifest.bookmarks[UUID_A] == {
        "min": ["2026-01-01 00:00:00", 0],
        "max": ["2026-01-01 00:00:24", 249],
        "rows": 250,
    }
    assert manifest.bookmarks[UUID_B]["rows"] == 40
    assert manifest.bookmarks[UUID_B]["min"] == ["2026-01-01 00:01:40", 1000]
    # every object listed with its true size and SHA-256; the manifest on disk says the same
    for obj in manifest.objects:
        data = (out / obj.name).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (obj.size, obj.sha256)
    assert Manifest.from_json((out / MANIFEST).read_bytes()) == manifest
    meta = json.loads((out / f"{TABLE}.json").read_text())
    assert meta["chunks"] == chunks
    lines = b"".join(_unzstd(out / c) for c in chunks).splitlines()
    assert len(lines) == 290


def test_dump_is_deterministic(archive_dsn: MySQLDsn, tmp_path: Path) -> None:
    _rotated(archive_dsn, 120, 0)
    conn = mysql.connect(archive_dsn)
    first = dump_table(conn, TABLE, tmp_path / "a", chunk_rows=50)
    second = dump_table(conn, TABLE, tmp_path / "b", chunk_rows=50)
    conn.close()
    assert first.to_json() == second.to_json()


@pytest.mark.parametrize("method", ["dump", "export"])
def test_files_load_with_plain_load_data(
    archive_dsn: MySQLDsn, tmp_path: Path, method: str
) -> None:
    _rotated(archive_dsn, 60, 25)
    conn = mysql.connect(archive_dsn)
    manifest = dump_table(conn, TABLE, tmp_path / "d", method=method, chunk_rows=30)
    conn.close()
    plain = []
    for obj in manifest.objects:
        path = tmp_path / "d" / obj.name
        if obj.name.endswith(".zst"):
            out = path.with_suffix("")
            out.write_bytes(_unzstd(path))
            plain.append(out)
        elif obj.name.endswith(".csv"):
            plain.append(path)
    fields = (
        "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'"
        if method == "dump"
        else "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '\\\\'"
        " LINES TERMINATED BY '\\r\\n'"
    )
    conn = mysql.connect(archive_dsn, allow_local_infile=True, autocommit=True)
    cur = conn.cursor()
    cur.execute("CREATE TABLE copy LIKE audit_data_template")
    for path in plain:
        cur.execute(
            f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE copy CHARACTER SET utf8mb4 {fields}"
        )
    conn.close()
    assert table_rows(archive_dsn, "copy") == table_rows(archive_dsn, TABLE)


def test_full_staging_disk_is_a_clear_error(archive_dsn: MySQLDsn, tmp_path: Path) -> None:
    _rotated(archive_dsn, 300, 0)

    class Tiny:
        """A file that runs out of space after 2 KB (the filesystem seam)."""

        def __init__(self, path: Path) -> None:
            self.f = path.open("wb")
            self.written = 0

        def write(self, data: bytes) -> int:
            self.written += len(data)
            if self.written > 2048:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(data)

        def flush(self) -> None:
            self.f.flush()

        def close(self) -> None:
            self.f.close()

        def __enter__(self) -> Tiny:
            return self

        def __exit__(self, *exc: object) -> None:
            self.close()

    def opener(path: Path) -> IO[bytes]:
        return Tiny(path)  # type: ignore[return-value]

    conn = mysql.connect(archive_dsn)
    with pytest.raises(ObjectStoreError, match="staging disk is full") as info:
        dump_table(conn, TABLE, tmp_path / TABLE, opener=opener, level=1)
    conn.close()
    assert info.value.retriable
    assert info.value.context["table"] == TABLE
    assert not (tmp_path / TABLE / MANIFEST).exists()


def test_missing_table_says_it_is_gone(archive_dsn: MySQLDsn, tmp_path: Path) -> None:
    conn = mysql.connect(archive_dsn)
    with pytest.raises(ArchiveError):
        dump_table(conn, TABLE, tmp_path / TABLE)
    conn.close()


def test_pages_are_bounded_in_bytes_for_big_events(archive_dsn: MySQLDsn) -> None:
    from consumer.dump import _pages

    _rotated(archive_dsn, 0, 0)
    conn = mysql.connect(archive_dsn)
    cur = conn.cursor()
    big = "x" * (512 * 1024)
    for i in range(12):
        cur.execute(
            f"INSERT INTO {TABLE} (server_uuid, ts, id, class, event, query, raw)"
            " VALUES ('s', '2026-01-01 00:00:00', %s, 'general', 'status', %s, '{}')",
            (i, big),
        )
    conn.commit()
    columns = table_columns(conn)
    limit = 2 << 20
    pages = list(_pages(conn, f"`{TABLE}`", TABLE, columns, page_rows=1000, page_bytes=limit))
    conn.close()
    sizes = [sum(len(r[columns.index("query")]) for r in p) for p in pages]
    assert len(pages[0]) == 1 and max(len(p) for p in pages) > 1
    assert max(sizes) <= limit
    assert [int(r[2]) for p in pages for r in p] == list(range(12))


def table_columns(conn: mysql.Connection) -> list[str]:
    cur = conn.cursor()
    cur.execute(f"SELECT * FROM {TABLE} LIMIT 0")
    cur.fetchall()
    return [d[0] for d in cur.description or ()]
