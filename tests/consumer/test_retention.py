"""Retention rules through the real oci SDK: the test server protects objects, uploads check."""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
from oci.exceptions import ServiceError
from oci.object_storage.models import (
    CreateMultipartUploadDetails,
    CreateRetentionRuleDetails,
    Duration,
)

import sql
from auditstream import checkpoint, mysql
from auditstream.chain import ChainState
from auditstream.dsn import MySQLDsn
from auditstream.errors import ChecksumMismatch
from consumer.dumpformat import DumpObject
from consumer.ledger import Entry, Ledger
from consumer.ops import upload_main
from consumer.opsconfig import UploadSettings
from consumer.retention import RetentionGuard, RetentionMissing
from consumer.rotation import Rotator, Schedule
from consumer.rotationtask import build_rotation_task
from consumer.seals import CheckpointShipper, object_name, read_archive
from consumer.targets import FileStore, TargetUrl
from consumer.upload import OciStore
from tests.auditstream.test_signing import rfc_signer
from tests.consumer.test_upload import make_store
from tests.harness.oci_fixtures import insert_rows
from tests.harness.oci_server import NAMESPACE, OciTestServer

UUID = "3b3c2d2e-0000-11ee-8000-000000000001"


def rule(
    store: OciStore, days: int | None, unit: str = "DAYS", locked: datetime | None = None
) -> str:
    duration = Duration(time_amount=days, time_unit=unit) if days is not None else None
    details = CreateRetentionRuleDetails(
        display_name=f"keep-{days}-{unit}", duration=duration, time_rule_locked=locked
    )
    return str(store.client.create_retention_rule(NAMESPACE, "audit", details).data.id)


def staged(tmp_path: Path, data: bytes) -> tuple[Path, DumpObject]:
    path = tmp_path / "obj"
    path.write_bytes(data)
    return path, DumpObject("obj", len(data), hashlib.sha256(data).hexdigest())


def test_a_rule_refuses_delete_and_overwrite_and_create_only_retries_still_behave(
    oci_server: OciTestServer, oci_config: Path, tmp_path: Path
) -> None:
    store = make_store(oci_server, oci_config, "oci://audit/r")
    path, obj = staged(tmp_path, b"evidence")
    assert store.put_file("r/a", path, obj) is True
    rule_id = rule(store, 30, locked=datetime.now(UTC) + timedelta(days=14))
    client = store.client
    got = client.get_retention_rule(NAMESPACE, "audit", rule_id).data
    assert (got.duration.time_amount, got.duration.time_unit) == (30, "DAYS")
    assert [r.id for r in client.list_retention_rules(NAMESPACE, "audit").data.items] == [rule_id]

    with pytest.raises(ServiceError) as deleted:
        store._bare_client.delete_object(NAMESPACE, "audit", "r/a")
    assert (deleted.value.status, deleted.value.code) == (409, "Conflict")
    assert "retention rule" in deleted.value.message
    with pytest.raises(ServiceError) as overwritten:
        store._bare_client.put_object(NAMESPACE, "audit", "r/a", b"forged")
    assert overwritten.value.status == 409
    assert oci_server.objects()["r/a"] == b"evidence"
    # the uploader's retry of a create-only object finds the name taken (412), not an error
    assert store.put_file("r/a", path, obj) is False

    # should the service answer a protected name with 409 rather than 412: still "taken"
    oci_server.fault("status", 1, method="PUT", path="/o/r", status=409)
    assert store.put_file("r/a", path, obj) is False
    assert ("PUT", 409) in {(m, status) for m, _, status in oci_server.requests}
    assert oci_server.objects()["r/a"] == b"evidence"

    # a multipart upload over the protected name is refused as well
    parts = CreateMultipartUploadDetails(object="r/a")
    with pytest.raises(ServiceError) as multipart:
        store._bare_client.create_multipart_upload(NAMESPACE, "audit", parts)
    assert multipart.value.status == 409
    assert oci_server.objects()["r/a"] == b"evidence"

    # a lock time needs a duration (an indefinite rule cannot be locked)
    with pytest.raises(ServiceError) as indefinite:
        rule(store, None, locked=datetime.now(UTC) + timedelta(days=14))
    assert (indefinite.value.status, indefinite.value.code) == (400, "InvalidParameter")

    # unlocked, the rule can go (and then the object); a locked one cannot
    client.delete_retention_rule(NAMESPACE, "audit", rule_id)
    store._bare_client.delete_object(NAMESPACE, "audit", "r/a")
    locked = rule(store, 1, "YEARS", locked=datetime.now(UTC) - timedelta(days=1))
    with pytest.raises(ServiceError) as refused:
        store._bare_client.delete_retention_rule(NAMESPACE, "audit", locked)
    assert refused.value.status == 409


def test_uploads_require_a_long_enough_time_bound_rule(
    oci_server: OciTestServer, oci_config: Path, tmp_path: Path
) -> None:
    store = make_store(oci_server, oci_config, "oci://audit/g")
    path, obj = staged(tmp_path, b"dump")
    with pytest.raises(RetentionMissing, match="at least 90 days"):
        RetentionGuard(store, 90).put_file("g/x", path, obj)
    rule(store, None)  # indefinite: protects, but is not time-bound
    rule(store, 30)  # too short
    with pytest.raises(RetentionMissing):
        RetentionGuard(store, 90).put_file("g/x", path, obj)
    assert oci_server.objects() == {}  # nothing uploaded
    warned = RetentionGuard(store, 90, "warn")
    assert warned.put_file("g/x", path, obj) is True and warned.status is None

    lock_at = datetime.now(UTC) + timedelta(days=14)
    rule(store, 1, "YEARS", locked=lock_at)
    guard = RetentionGuard(store, 90)
    assert guard.put_file("g/y", path, obj) is True
    assert guard.status is not None
    assert (guard.status.days, guard.status.locked) == (365, False)
    assert "not locked yet (locks at" in str(guard.status)
    rule(store, 2, "YEARS", locked=datetime.now(UTC) - timedelta(days=1))
    longest = RetentionGuard(store, 90)
    assert longest.check() is not None and "locked since" in str(longest.status)
    assert longest.status.days == 730  # type: ignore[union-attr]

    with pytest.raises(RetentionMissing, match="file target"):
        RetentionGuard(FileStore(tmp_path), 1).put_file("f", path, obj)


def test_upload_settings_guard_dumps_and_checkpoints(
    oci_server: OciTestServer, oci_config: Path
) -> None:
    s = UploadSettings(
        archive_dsn="mysql://u@h/db", target="oci://audit/d", seal_target="oci://audit/s",
        oci_config_file=oci_config, oci_endpoint=oci_server.endpoint, retention_min_days=30,
    )  # fmt: skip
    _, dumps = s.store()
    shipper = s.shipper()
    assert isinstance(dumps, RetentionGuard) and shipper is not None
    assert isinstance(shipper.store, RetentionGuard)
    assert shipper.store.min_days == 30 and dumps.policy == "refuse"
    # the consumer's own archiving pass writes the checkpoints too
    task = build_rotation_task(MySQLDsn.parse("mysql://u@h/db"), upload=s)
    assert task.shipper is not None and task.shipper.target.prefix == "s"


def archive_with_a_table_and_a_checkpoint(dsn: MySQLDsn) -> str:
    """A rotated table of 50 rows and one signed checkpoint in ``audit_control``."""
    insert_rows(dsn, 50, server_uuid=UUID)
    ledger = Ledger(mysql.connect(dsn))
    table = Rotator(mysql.connect(dsn), ledger, Schedule()).rotate(datetime.now(UTC), force=True)
    ledger.close()
    assert table is not None
    state = ChainState.start(UUID).advance_event("2026-01-01 00:00:00", 0, "{}")
    record = checkpoint.checkpoint_record(rfc_signer(), state, 1, checkpoint.now_ms())
    conn = mysql.connect(dsn)
    cur = conn.cursor()
    for statement in sql.statements("archive/audit_control"):
        cur.execute(statement)
    cur.execute(
        "INSERT INTO audit_control (topic, kafka_partition, kafka_offset, server_uuid, kind, at, "
        "checkpoint_seq, signed_seq, signed_chain, key_id, signature, chain, chain_seq) VALUES "
        "('c', 0, 0, %s, 'checkpoint', %s, 1, %s, %s, %s, %s, %s, %s)",
        (UUID, record["at"].replace(tzinfo=None), state.seq, state.hash, record["key_id"],
         record["signature"], "ab" * 32, 2),
    )  # fmt: skip
    conn.commit()
    conn.close()
    return table


def ledger_entry(dsn: MySQLDsn, table: str) -> Entry | None:
    ledger = Ledger(mysql.connect(dsn))
    try:
        return ledger.get(table)
    finally:
        ledger.close()


def test_an_overwrite_the_rule_refuses_is_reported_by_the_uploader(
    archive_dsn: MySQLDsn,
    oci_server: OciTestServer,
    oci_config: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    table = archive_with_a_table_and_a_checkpoint(archive_dsn)
    rule(make_store(oci_server, oci_config, "oci://audit/d"), 30, locked=None)
    # Someone wrote other bytes first under the dump's manifest name; the rule now keeps them
    # from being replaced, and the uploader says so: the table is stuck, exit 5.
    manifest = f"d/{table}/manifest.json"
    oci_server.put(manifest, b"forged manifest")
    args = [f"--archive-dsn={archive_dsn.url(reveal=True)}", "--target=oci://audit/d",
            "--retention-min-days=30", f"--staging-dir={tmp_path}/staging",
            f"--oci-config-file={oci_config}", f"--oci-endpoint={oci_server.endpoint}"]  # fmt: skip
    capsys.readouterr()
    assert upload_main(args) == 5
    out = capsys.readouterr().out
    failed = [x for x in out.splitlines() if x.startswith(f"failed {table}:")]
    assert len(failed) == 1 and "manifest.json" in failed[0], out
    assert "retention: bucket audit: retention rule 'keep-30-DAYS', 30 days" in out
    assert oci_server.objects()[manifest] == b"forged manifest"
    entry = ledger_entry(archive_dsn, table)
    assert entry is not None and entry.stuck and "manifest.json" in str(entry.last_error)

    # A checkpoint's name taken by other bytes between the shipper's listing and its
    # create-only put (a retry after a crash, another member, someone else): refused by the
    # rule, reported by the shipper, never replaced.
    target = TargetUrl.parse("oci://audit/s")
    sealed = object_name(target, read_archive(archive_dsn)[0])
    oci_server.put(sealed, b"forged checkpoint")
    store = make_store(oci_server, oci_config, "oci://audit/s")
    store.list = lambda prefix: []  # type: ignore[method-assign]
    with pytest.raises(ChecksumMismatch, match="differs") as refused:
        CheckpointShipper(archive_dsn, RetentionGuard(store, 30), target).ship()
    assert refused.value.context["object"] == sealed and not refused.value.retriable
    assert oci_server.objects()[sealed] == b"forged checkpoint"
    tried = [
        (m, status) for m, path, status in oci_server.requests if unquote(path).endswith(sealed)
    ]
    assert ("PUT", 412) in tried  # create-only: the name was taken
    assert not [r for r in oci_server.requests if r[0] == "DELETE"]  # nothing deleted


def test_the_consumers_archiving_pass_refuses_without_a_rule_and_says_so_as_an_error(
    archive_dsn: MySQLDsn, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    table = archive_with_a_table_and_a_checkpoint(archive_dsn)
    upload = UploadSettings(
        archive_dsn=archive_dsn.url(reveal=True), target=f"file://{tmp_path}/dumps",
        seal_target=f"file://{tmp_path}/seals", retention_min_days=30,
        staging_dir=tmp_path / "staging",
    )  # fmt: skip
    task = build_rotation_task(archive_dsn, upload=upload)
    with caplog.at_level(logging.INFO):
        task._archive(datetime.now(UTC))  # the pass the consumer runs in its thread
    refused = [r for r in caplog.records if "an operator must act" in r.getMessage()]
    assert len(refused) == 1 and refused[0].levelno == logging.ERROR
    assert "no time-bound retention rule of at least 30 days" in refused[0].getMessage()
    assert not list((tmp_path / "seals").rglob("*.json"))  # no checkpoint written
    assert not list((tmp_path / "dumps").rglob("*"))  # no dump either: the table is stuck
    entry = ledger_entry(archive_dsn, table)
    assert entry is not None and entry.stuck and "retention rule" in str(entry.last_error)
