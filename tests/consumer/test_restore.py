"""Restore: a dump loaded back from a target reproduces the table row for row."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from auditstream import mysql
from auditstream.dsn import MySQLDsn
from auditstream.errors import (
    ArchiveContentError,
    ArchiveError,
    ChecksumMismatch,
    ObjectStoreError,
)
from consumer.archiver import Archiver
from consumer.ledger import Ledger
from consumer.restore import read_manifest, restore
from consumer.rotation import Rotator, Schedule
from consumer.schema import SCHEMA_VERSION
from consumer.targets import FileStore, TargetUrl
from tests.harness.mariadb import PrivateMariaDB
from tests.harness.oci_fixtures import insert_rows, table_rows

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
TABLE = "audit_data_20260102_030405"


def rotate_and_upload(dsn: MySQLDsn, tmp_path: Path, method: str) -> tuple[TargetUrl, FileStore]:
    insert_rows(dsn, 180, server_uuid="srv-a")
    insert_rows(dsn, 70, server_uuid="srv-b", start=5000)
    ledger = Ledger(mysql.connect(dsn))
    assert Rotator(mysql.connect(dsn), ledger, Schedule()).rotate(NOW, force=True) == TABLE
    target = TargetUrl.parse(f"file://{tmp_path}/store/prefix")
    store = FileStore(tmp_path / "store" / "prefix")
    archiver = Archiver(dsn, store, target, tmp_path / "staging", method=method, chunk_rows=64)
    assert archiver.run(NOW).verified == [TABLE]
    return target, store


@pytest.mark.parametrize("method", ["dump", "export"])
def test_round_trip_is_exact(archive_dsn: MySQLDsn, tmp_path: Path, method: str) -> None:
    target, store = rotate_and_upload(archive_dsn, tmp_path, method)
    original = table_rows(archive_dsn, TABLE)
    assert len(original) == 250

    rows = restore(store, target, TABLE, archive_dsn, tmp_path / "r", into="restored")
    assert rows == 250
    assert table_rows(archive_dsn, "restored") == original

    # the original name too, once the rotated table is gone
    conn = mysql.connect(archive_dsn, autocommit=True)
    conn.cursor().execute(f"DROP TABLE {TABLE}")
    conn.close()
    assert restore(store, target, TABLE, archive_dsn, tmp_path / "r") == 250
    assert table_rows(archive_dsn, TABLE) == original


def test_refuses_a_non_empty_table_and_a_corrupt_object(
    archive_dsn: MySQLDsn, tmp_path: Path
) -> None:
    target, store = rotate_and_upload(archive_dsn, tmp_path, "dump")
    with pytest.raises(ArchiveError, match="not empty"):
        restore(store, target, TABLE, archive_dsn, tmp_path / "r")

    chunk = tmp_path / "store" / "prefix" / TABLE / f"{TABLE}@1.tsv.zst"
    data = bytearray(chunk.read_bytes())
    data[10] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(ChecksumMismatch):
        restore(store, target, TABLE, archive_dsn, tmp_path / "r", into="other")
    assert "other" not in {r[0] for r in _tables(archive_dsn)}

    with pytest.raises(ObjectStoreError, match="no dump"):
        restore(store, target, "audit_data_20200101_000000", archive_dsn, tmp_path / "r")


def _tables(dsn: MySQLDsn) -> list[tuple[str]]:
    conn = mysql.connect(dsn)
    cur = conn.cursor()
    cur.execute("SHOW TABLES")
    out = [(str(r[0]),) for r in cur.fetchall()]
    conn.close()
    return out


@pytest.mark.parametrize(
    "tamper",
    [
        {"table": "audit_data_20200101_000000"},
        {"method": "dump; DROP TABLE audit_data"},
        {"objects": [{"name": "../../../etc/passwd", "size": 1, "sha256": "0" * 64}]},
        {"columns": ["id`, `x"]},
        {"ddl": "CREATE TABLE `audit_data_20260102_030405` (x INT) AS SELECT * FROM mysql.user"},
    ],
    ids=["table", "method", "path", "column", "ddl"],
)
def test_a_tampered_manifest_reaches_no_sql_and_no_path(
    archive_dsn: MySQLDsn, tmp_path: Path, tamper: dict[str, object]
) -> None:
    import json

    from auditstream.errors import AuditStreamError

    target, store = rotate_and_upload(archive_dsn, tmp_path, "dump")
    original = table_rows(archive_dsn, TABLE)
    path = tmp_path / "store" / "prefix" / TABLE / "manifest.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **tamper}))
    if "ddl" in tamper:  # the DDL is never executed: the restore is exact anyway
        restore(store, target, TABLE, archive_dsn, tmp_path / "r", into="back")
        assert table_rows(archive_dsn, "back") == original
        return
    with pytest.raises(AuditStreamError):
        restore(store, target, TABLE, archive_dsn, tmp_path / "r", into="back")
    assert "back" not in {r[0] for r in _tables(archive_dsn)}


@pytest.fixture
def empty_server(tmp_path: Path) -> Iterator[PrivateMariaDB]:
    """A second mariadbd with nothing on it: the archive host is gone, this is its replacement."""
    server = PrivateMariaDB(base=tmp_path / "empty-db").start()
    try:
        yield server
    finally:
        server.cleanup()


def test_restore_onto_an_empty_server_creates_the_schema_from_our_ddl(
    archive_dsn: MySQLDsn, tmp_path: Path, empty_server: PrivateMariaDB
) -> None:
    target, store = rotate_and_upload(archive_dsn, tmp_path, "dump")
    original = table_rows(archive_dsn, TABLE)
    manifest = read_manifest(store, target, TABLE)
    assert manifest.schema_version == SCHEMA_VERSION
    fresh = empty_server.dsn.with_database("audit_archive")
    assert restore(store, target, TABLE, fresh, tmp_path / "r") == 250
    assert table_rows(fresh, TABLE) == original
    conn = mysql.connect(fresh)
    cur = conn.cursor()
    cur.execute("SHOW TABLES")
    assert sorted(str(r[0]) for r in cur.fetchall()) == [TABLE, "audit_data_template"]
    conn.close()


def test_a_dump_whose_columns_do_not_match_our_ddl_is_refused_naming_both(
    archive_dsn: MySQLDsn, tmp_path: Path, empty_server: PrivateMariaDB
) -> None:
    import json

    target, store = rotate_and_upload(archive_dsn, tmp_path, "dump")
    path = tmp_path / "store" / "prefix" / TABLE / "manifest.json"
    good = json.loads(path.read_text())
    fresh = empty_server.dsn.with_database("audit_archive")
    for tamper, claimed in (
        ({"schema_version": 1}, "schema version 1"),  # v2 columns claimed as v1
        ({"columns": [*good["columns"], "extra"]}, "schema version 2"),  # a newer release's
        ({"columns": good["columns"][1:]}, "schema version 2"),
    ):
        path.write_text(json.dumps({**good, **tamper}))
        with pytest.raises(ArchiveContentError, match=claimed) as caught:
            restore(store, target, TABLE, fresh, tmp_path / "r")
        assert f"project: schema version {SCHEMA_VERSION}" in str(caught.value)
        assert caught.value.exit_code == 5 and not caught.value.retriable
    # nothing was created: the check comes before any download or DDL
    conn = mysql.connect(empty_server.dsn)
    cur = conn.cursor()
    cur.execute("SHOW DATABASES LIKE 'audit_archive'")
    assert cur.fetchall() == []
    conn.close()
    # a manifest from before the version was recorded: its columns name it
    path.write_text(json.dumps({k: v for k, v in good.items() if k != "schema_version"}))
    assert restore(store, target, TABLE, fresh, tmp_path / "r") == 250


def test_an_archive_template_older_than_the_dump_is_refused(
    archive_dsn: MySQLDsn, tmp_path: Path
) -> None:
    target, store = rotate_and_upload(archive_dsn, tmp_path, "dump")
    conn = mysql.connect(archive_dsn, autocommit=True)
    conn.cursor().execute("ALTER TABLE audit_data_template DROP COLUMN chain_seq")
    conn.close()
    with pytest.raises(ArchiveContentError, match="run `consumer setup`"):
        restore(store, target, TABLE, archive_dsn, tmp_path / "r", into="back")
    assert "back" not in {r[0] for r in _tables(archive_dsn)}
