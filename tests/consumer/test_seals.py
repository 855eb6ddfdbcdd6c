"""Checkpoints through the real consumer into audit_control, then create-only into a bucket."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from auditstream.dsn import MySQLDsn
from auditstream.errors import ChecksumMismatch
from auditstream.kafka import TopicSpec, ensure_topics
from consumer.ops import upload_main
from consumer.seals import CheckpointShipper, from_json, object_name, read_archive
from consumer.targets import FileStore, TargetUrl
from tests.auditstream.test_checkpoint import sealed_records
from tests.auditstream.test_signing import rfc_signer
from tests.consumer.test_upload import make_store
from tests.harness.consumer_once import consume_once
from tests.harness.oci_server import OciTestServer
from tests.ops.verify.conftest import A, chained_records
from tests.ops.verify.test_topic import publish


def archive_pipeline(
    bootstrap: str, mysql_db: MySQLDsn, unique_name: Callable[[str], str],
    records: list[tuple[str, dict[str, Any]]],
) -> dict[str, str]:  # fmt: skip
    """Publish ``records`` and run the real consumer once into ``mysql_db``; return the topics."""
    names = {"events": unique_name("ev"), "control": unique_name("ctl"), "dlq": unique_name("dlq")}
    ensure_topics({"bootstrap.servers": bootstrap}, [TopicSpec(n, 2, 1) for n in names.values()])
    publish(bootstrap, names, records)
    consume_once(bootstrap, mysql_db, names, unique_name("g"), "--no-rotate")
    return names


def test_checkpoints_are_archived_and_written_once_create_only(
    bootstrap: str,
    mysql_db: MySQLDsn,
    unique_name: Callable[[str], str],
    oci_server: OciTestServer,
    oci_config: Path,
    tmp_path: Path,
) -> None:
    records = sealed_records(chained_records(A), rfc_signer(), every=10)
    sent = [r for n, r in records if n == "control_event" and r["kind"] == "checkpoint"]
    assert len(sent) == 3
    archive_pipeline(bootstrap, mysql_db, unique_name, records)
    stored = read_archive(mysql_db)
    assert [r["checkpoint_seq"] for r in stored] == [1, 2, 3]
    for got, want in zip(stored, sent, strict=True):
        for key in ("signed_seq", "signed_chain", "key_id", "signature", "chain", "chain_seq"):
            assert got[key] == want[key], key
        assert got["at"].replace(tzinfo=None) == want["at"].replace(tzinfo=None)

    for store, target in (
        (
            make_store(oci_server, oci_config, "oci://audit/seal"),
            TargetUrl.parse("oci://audit/seal"),
        ),
        (FileStore(tmp_path), TargetUrl.parse(f"file://{tmp_path}")),
    ):
        shipper = CheckpointShipper(mysql_db, store, target)
        names = shipper.ship()
        assert names == [object_name(target, r) for r in stored]
        back = from_json(b"".join(store.read(names[0])))
        assert (back["signature"], back["at"]) == (sent[0]["signature"], sent[0]["at"])
        assert shipper.ship() == []  # a second pass writes nothing
    assert all(n.startswith("seal/checkpoints/") for n in oci_server.objects())

    # a name taken by other bytes (written between the listing and the put): reported, kept
    target = TargetUrl.parse("oci://audit/seal")
    store = make_store(oci_server, oci_config, "oci://audit/seal")
    taken = object_name(target, stored[0])
    oci_server.buckets["audit"].pop(taken)
    oci_server.put(taken, b"forged")
    store.list = lambda prefix: []  # type: ignore[method-assign]
    with pytest.raises(ChecksumMismatch):
        CheckpointShipper(mysql_db, store, target).ship()
    assert oci_server.objects()[taken] == b"forged"


def test_upload_command_writes_the_checkpoints_to_the_seal_target(
    bootstrap: str,
    mysql_db: MySQLDsn,
    unique_name: Callable[[str], str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    records = sealed_records(chained_records(A, 12), rfc_signer(), every=5)
    archive_pipeline(bootstrap, mysql_db, unique_name, records)
    args = [f"--archive-dsn={mysql_db.url(reveal=True)}", f"--target=file://{tmp_path}/dumps",
            f"--seal-target=file://{tmp_path}/seals", f"--staging-dir={tmp_path}/staging"]  # fmt: skip
    capsys.readouterr()
    assert upload_main(args) == 0
    sealed = [x for x in capsys.readouterr().out.splitlines() if x.startswith("sealed ")]
    assert len(sealed) == 2
    files = sorted(p.name for p in (tmp_path / "seals" / "checkpoints" / A).iterdir())
    assert [f[:12] for f in files] == ["000000000001", "000000000002"]
