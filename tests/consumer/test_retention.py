"""Retention rules through the real oci SDK: the test server protects objects, uploads check."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from oci.exceptions import ServiceError
from oci.object_storage.models import (
    CreateMultipartUploadDetails,
    CreateRetentionRuleDetails,
    Duration,
)

from auditstream.dsn import MySQLDsn
from consumer.dumpformat import DumpObject
from consumer.opsconfig import UploadSettings
from consumer.retention import RetentionGuard, RetentionMissing
from consumer.rotationtask import build_rotation_task
from consumer.targets import FileStore
from consumer.upload import OciStore
from tests.consumer.test_upload import make_store
from tests.harness.oci_server import NAMESPACE, OciTestServer


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
