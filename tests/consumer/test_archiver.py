"""The ledger steps end to end on mariadbd and the real oci SDK against the OCI test server.

Crashes at every step boundary, 503 storms, dropped connections, existing objects, checksum
mismatches and tables dropped by hand: each ends in a clear ledger state, nothing lost, nothing
uploaded twice.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from auditstream import mysql
from auditstream.dsn import MySQLDsn
from consumer.archiver import Archiver, Hook
from consumer.dumpformat import Manifest
from consumer.ledger import Ledger
from consumer.rotation import Rotator, Schedule
from consumer.targets import TargetUrl
from consumer.upload import OciOptions, OciStore
from tests.harness.oci_fixtures import insert_rows, table_rows
from tests.harness.oci_server import NAMESPACE, OciTestServer

NOW = datetime(2026, 3, 1, 0, 0, 7, tzinfo=UTC)
TABLE = "audit_data_20260301_000007"
PREFIX = f"arch/{TABLE}/"
OBJECTS = [
    f"{TABLE}@0.tsv.zst",
    f"{TABLE}@1.tsv.zst",
    f"{TABLE}.json",
    f"{TABLE}.sql",
    "manifest.json",
]


class Crash(BaseException):
    """A simulated process death (not an AuditStreamError: nothing may catch it)."""


def crash_at(point: str) -> Hook:
    fired = False

    def hook(table: str, where: str) -> None:
        nonlocal fired
        if where == point and not fired:
            fired = True
            raise Crash(point)

    return hook


@pytest.fixture
def store(oci_server: OciTestServer, oci_config: Path) -> OciStore:
    options = OciOptions(
        config_file=oci_config,
        endpoint=oci_server.endpoint,
        part_size=4 * 1024,  # the chunks go multipart, the metadata single-part
        retry_attempts=5,  # more than the faults of one test can put on one part
        retry_base_seconds=0.01,
        retry_max_wait_seconds=0.05,
        circuit_breaker=False,
    )
    return OciStore(TargetUrl.parse(f"oci://audit@{NAMESPACE}/arch"), options)


@pytest.fixture
def rotated(archive_dsn: MySQLDsn) -> MySQLDsn:
    insert_rows(archive_dsn, 300, server_uuid="srv-1")
    insert_rows(archive_dsn, 100, server_uuid="srv-2", start=10_000)
    ledger = Ledger(mysql.connect(archive_dsn))
    assert Rotator(mysql.connect(archive_dsn), ledger, Schedule()).rotate(NOW, force=True) == TABLE
    ledger.close()
    return archive_dsn


def archiver(dsn: MySQLDsn, store: OciStore, tmp_path: Path, **kwargs: object) -> Archiver:
    return Archiver(
        dsn,
        store,
        store.target,
        tmp_path / "staging",
        chunk_rows=200,
        **kwargs,  # type: ignore[arg-type]
    )


def entry(dsn: MySQLDsn):  # type: ignore[no-untyped-def]
    ledger = Ledger(mysql.connect(dsn))
    try:
        return ledger.get(TABLE)
    finally:
        ledger.close()


def assert_verified_once(server: OciTestServer, dsn: MySQLDsn) -> None:
    stored = server.objects()
    assert sorted(stored) == sorted(PREFIX + o for o in OBJECTS)
    assert server.uploads == {}  # no multipart upload left behind
    manifest = Manifest.from_json(stored[PREFIX + "manifest.json"])
    assert manifest.rows == 400
    assert manifest.bookmarks["srv-2"]["rows"] == 100
    e = entry(dsn)
    assert e.state == "verified" and not e.stuck and e.last_error is None
    assert e.row_count == 400
    assert {o["name"]: o["size"] for o in e.objects} == {
        k[len(PREFIX) :]: len(v) for k, v in stored.items()
    }


def test_happy_path_records_everything(
    rotated: MySQLDsn, store: OciStore, oci_server: OciTestServer, tmp_path: Path
) -> None:
    outcome = archiver(rotated, store, tmp_path).run(NOW)
    assert outcome.verified == [TABLE] and outcome.exit_code == 0
    assert_verified_once(oci_server, rotated)
    e = entry(rotated)
    assert e.bookmarks["srv-1"] == {
        "min": ["2026-01-01 00:00:00", 0],
        "max": ["2026-01-01 00:00:29", 299],
        "rows": 300,
    }
    assert e.target == f"oci://audit@{NAMESPACE}/arch" and e.method == "dump"
    assert not (tmp_path / "staging" / TABLE).exists()
    # multipart objects were used for the chunks
    assert any(m == "POST" and p.endswith("/u") for m, p, _ in oci_server.requests)


POINTS = ["dump-written", "dumped", *(f"put:{o}" for o in OBJECTS), "uploaded", "verified"]


@pytest.mark.parametrize("point", POINTS)
def test_crash_at_every_step_resumes_to_verified_once(
    rotated: MySQLDsn, store: OciStore, oci_server: OciTestServer, tmp_path: Path, point: str
) -> None:
    with pytest.raises(Crash):
        archiver(rotated, store, tmp_path, hook=crash_at(point)).run(NOW)
    outcome = archiver(rotated, store, tmp_path).run(NOW + timedelta(seconds=1))
    assert outcome.failed == {}
    assert_verified_once(oci_server, rotated)


def test_crash_after_drop_before_ledger(
    rotated: MySQLDsn, store: OciStore, oci_server: OciTestServer, tmp_path: Path
) -> None:
    with pytest.raises(Crash):
        archiver(rotated, store, tmp_path, keep_tables=0, hook=crash_at("table-dropped")).run(NOW)
    outcome = archiver(rotated, store, tmp_path, keep_tables=0).run(NOW)
    assert outcome.dropped == [TABLE]
    assert entry(rotated).state == "dropped"
    assert len(oci_server.objects()) == len(OBJECTS)


def test_lost_staging_is_dumped_again_identically(
    rotated: MySQLDsn, store: OciStore, oci_server: OciTestServer, tmp_path: Path
) -> None:
    with pytest.raises(Crash):
        archiver(rotated, store, tmp_path, hook=crash_at(f"put:{OBJECTS[1]}")).run(NOW)
    shutil.rmtree(tmp_path / "staging")
    assert archiver(rotated, store, tmp_path).run(NOW).verified == [TABLE]
    assert_verified_once(oci_server, rotated)


def test_503_storm_is_retried_with_backoff(
    rotated: MySQLDsn, store: OciStore, oci_server: OciTestServer, tmp_path: Path
) -> None:
    oci_server.fault("status", count=40, status=503, path="/b/")
    outcome = archiver(rotated, store, tmp_path).run(NOW)
    assert outcome.failed[TABLE].retriable and outcome.exit_code == 3
    e = entry(rotated)
    assert e.state == "dumped" and not e.stuck and e.attempts == 1
    assert "503" in (e.last_error or "")
    assert e.next_attempt_at is not None and e.next_attempt_at > NOW
    # not due yet: a tick right away leaves it alone
    assert archiver(rotated, store, tmp_path).run(NOW).failed == {}
    assert entry(rotated).state == "dumped"
    oci_server.faults.clear()
    later = NOW + timedelta(minutes=5)
    assert archiver(rotated, store, tmp_path).run(later).verified == [TABLE]
    assert_verified_once(oci_server, rotated)


def test_short_503_bursts_and_dropped_connection_mid_part(
    rotated: MySQLDsn, store: OciStore, oci_server: OciTestServer, tmp_path: Path
) -> None:
    oci_server.fault("status", count=2, status=503, method="PUT")
    oci_server.fault("drop", count=1, method="PUT", path="/u/")
    oci_server.fault("delay", count=3, seconds=0.2, method="HEAD")
    assert archiver(rotated, store, tmp_path).run(NOW).verified == [TABLE]
    assert any(status == -1 for _, _, status in oci_server.requests)
    assert any(status == 503 for _, _, status in oci_server.requests)
    assert_verified_once(oci_server, rotated)


def test_foreign_object_in_the_way_is_never_overwritten(
    rotated: MySQLDsn, store: OciStore, oci_server: OciTestServer, tmp_path: Path
) -> None:
    oci_server.put(PREFIX + f"{TABLE}.sql", b"someone else's file")
    outcome = archiver(rotated, store, tmp_path).run(NOW)
    assert not outcome.failed[TABLE].retriable
    e = entry(rotated)
    assert e.state == "dumped" and e.stuck
    assert "differs from the manifest" in (e.last_error or "")
    assert oci_server.objects()[PREFIX + f"{TABLE}.sql"] == b"someone else's file"
    assert PREFIX + "manifest.json" not in oci_server.objects()  # never claims completeness
    # stuck rows are left alone until an operator acts
    assert archiver(rotated, store, tmp_path).run(NOW + timedelta(days=1)).failed == {}


def test_checksum_mismatch_after_upload_is_stuck(
    rotated: MySQLDsn, store: OciStore, oci_server: OciTestServer, tmp_path: Path
) -> None:
    def corrupt(table: str, where: str) -> None:
        if where == "uploaded":
            name = PREFIX + f"{TABLE}@0.tsv.zst"
            data = bytearray(oci_server.objects()[name])
            data[-1] ^= 1
            oci_server.put(name, bytes(data))  # replaced behind our back

    outcome = archiver(rotated, store, tmp_path, hook=corrupt).run(NOW)
    assert type(outcome.failed[TABLE]).__name__ == "ChecksumMismatch"
    e = entry(rotated)
    assert e.state == "uploaded" and e.stuck and "checksum" in (e.last_error or "")
    assert e.verified_at is None


def test_table_dropped_by_hand(
    rotated: MySQLDsn, store: OciStore, oci_server: OciTestServer, tmp_path: Path
) -> None:
    conn = mysql.connect(rotated, autocommit=True)
    conn.cursor().execute(f"DROP TABLE {TABLE}")
    conn.close()
    outcome = archiver(rotated, store, tmp_path).run(NOW)
    assert outcome.exit_code != 0
    e = entry(rotated)
    assert e.state == "missing" and e.stuck
    assert "gone (dropped by hand?)" in (e.last_error or "")
    assert oci_server.objects() == {}


def test_table_dropped_by_hand_after_dump_still_uploads(
    rotated: MySQLDsn, store: OciStore, oci_server: OciTestServer, tmp_path: Path
) -> None:
    original = table_rows(rotated, TABLE)

    def drop(table: str, where: str) -> None:
        if where == "dumped":
            conn = mysql.connect(rotated, autocommit=True)
            conn.cursor().execute(f"DROP TABLE {TABLE}")
            conn.close()

    assert archiver(rotated, store, tmp_path, hook=drop).run(NOW).verified == [TABLE]
    assert_verified_once(oci_server, rotated)
    assert len(original) == json.loads(oci_server.objects()[PREFIX + "manifest.json"])["rows"]


def test_retention_keeps_newest_and_drops_only_verified(
    rotated: MySQLDsn, store: OciStore, oci_server: OciTestServer, tmp_path: Path
) -> None:
    ledger = Ledger(mysql.connect(rotated))
    rot = Rotator(mysql.connect(rotated), ledger, Schedule())
    insert_rows(rotated, 10, start=50_000)
    second = rot.rotate(NOW + timedelta(hours=1), force=True)
    insert_rows(rotated, 10, start=60_000)
    third = rot.rotate(NOW + timedelta(hours=2), force=True)
    oci_server.put(f"arch/{third}/manifest.json", b"in the way")  # third cannot verify
    outcome = archiver(rotated, store, tmp_path, keep_tables=1).run(NOW + timedelta(hours=3))
    assert outcome.verified == [TABLE, second]
    # newest (third) kept anyway; of the older ones only verified tables are dropped
    assert outcome.dropped == [TABLE, second]
    states = {e.table: e.state for e in ledger.all()}
    assert states == {TABLE: "dropped", second: "dropped", third: "dumped"}
    ledger.close()


@pytest.mark.long
def test_long_large_table_with_faults_round_trips(
    archive_dsn: MySQLDsn, oci_server: OciTestServer, oci_config: Path, tmp_path: Path
) -> None:
    from consumer.restore import restore

    for n in range(4):
        insert_rows(archive_dsn, 15_000, server_uuid=f"srv-{n}", start=n * 100_000, batch=2000)
    ledger = Ledger(mysql.connect(archive_dsn))
    table = Rotator(mysql.connect(archive_dsn), ledger, Schedule()).rotate(NOW, force=True)
    assert table is not None
    ledger.close()
    options = OciOptions(
        config_file=oci_config,
        endpoint=oci_server.endpoint,
        part_size=256 * 1024,
        parallel=4,
        retry_attempts=6,  # more than the faults below, however they fall on the parts
        retry_base_seconds=0.01,
        retry_max_wait_seconds=0.05,
        circuit_breaker=False,
    )
    store = OciStore(TargetUrl.parse(f"oci://audit@{NAMESPACE}/long"), options)
    oci_server.fault("status", count=3, status=503, method="PUT", path="/u/")
    oci_server.fault("drop", count=2, method="PUT", path="/u/")
    oci_server.fault("delay", count=5, seconds=0.1)
    arch = Archiver(archive_dsn, store, store.target, tmp_path / "staging", chunk_rows=20_000)
    outcome = arch.run(NOW)
    assert outcome.verified == [table], outcome.failed
    manifest = Manifest.from_json(oci_server.objects()[f"long/{table}/manifest.json"])
    assert manifest.rows == 60_000 and len(manifest.bookmarks) == 4
    original = table_rows(archive_dsn, table)
    assert restore(store, store.target, table, archive_dsn, tmp_path / "r", into="back") == 60_000
    assert table_rows(archive_dsn, "back") == original


@pytest.mark.parametrize("method", ["dump", "export"])
def test_empty_forced_rotation_uploads_and_restores(
    archive_dsn: MySQLDsn, store: OciStore, oci_server: OciTestServer, tmp_path: Path, method: str
) -> None:
    from consumer.restore import restore

    ledger = Ledger(mysql.connect(archive_dsn))
    assert Rotator(mysql.connect(archive_dsn), ledger, Schedule()).rotate(NOW, force=True) == TABLE
    ledger.close()
    arch = Archiver(archive_dsn, store, store.target, tmp_path / "staging", method=method)
    assert arch.run(NOW).verified == [TABLE]
    assert Manifest.from_json(oci_server.objects()[PREFIX + "manifest.json"]).rows == 0
    assert restore(store, store.target, TABLE, archive_dsn, tmp_path / "r", into="back") == 0
