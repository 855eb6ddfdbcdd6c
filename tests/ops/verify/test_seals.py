"""verify with signed checkpoints: a recomputed chain is caught, keys and numbers are checked."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from oci.exceptions import ServiceError
from oci.object_storage.models import CreateRetentionRuleDetails, Duration

from auditstream import checkpoint
from auditstream.chain import ChainState, Link
from auditstream.dsn import MySQLDsn
from auditstream.mysql import connect
from auditstream.signing import Keyring, Signer, public_hex
from consumer.ops import rotate_main, upload_main
from consumer.retention import RetentionGuard
from consumer.seals import CheckpointShipper
from consumer.targets import TargetUrl
from ops.cli import main
from ops.verify.report import VerifyReport
from ops.verify.seals import SealCheck
from tests.auditstream.test_checkpoint import AT, sealed_records
from tests.auditstream.test_signing import rfc_signer
from tests.consumer.test_seals import archive_pipeline
from tests.consumer.test_upload import make_store
from tests.harness.oci_server import NAMESPACE, OciTestServer
from tests.ops.verify.conftest import A, B, chained_records

Records = list[tuple[str, dict[str, Any]]]


def rechained(records: Records, index: int, raw: str) -> Records:
    """What an attacker without the key can do: change event ``index`` and recompute every
    chain value after it (checkpoint links included; their signed fields cannot change)."""
    out, state = [], ChainState.start(A)
    for n, (name, record) in enumerate(records):
        r = dict(record)
        if n == index:
            r["raw"] = raw
        link = Link.from_record(name, r)
        assert link is not None
        state = state.advance(link)
        out.append((name, state.stamp(r)))
    return out


def rewrite_archive(dsn: MySQLDsn, records: Records) -> None:
    conn = connect(dsn)
    cur = conn.cursor()
    for name, r in records:
        if name == "audit_event":
            cur.execute(
                "UPDATE audit_data SET raw = %s, chain = %s WHERE server_uuid = %s AND ts = %s "
                "AND id = %s",
                (r["raw"], r["chain"], A, r["timestamp"].replace(tzinfo=None), r["id"]),
            )
        else:
            cur.execute(
                "UPDATE audit_control SET chain = %s WHERE server_uuid = %s AND chain_seq = %s",
                (r["chain"], A, r["chain_seq"]),
            )
    conn.commit()
    conn.close()


def test_a_recomputed_chain_is_caught_through_the_signed_checkpoints(
    bootstrap: str,
    mysql_db: MySQLDsn,
    unique_name: Callable[[str], str],
    oci_server: OciTestServer,
    oci_config: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    signer = rfc_signer()
    records = sealed_records(chained_records(A), signer, every=10)
    archive_pipeline(bootstrap, mysql_db, unique_name, records)
    # the checkpoints go to a bucket with a retention rule (the real SDK, the OCI test server)
    seals = make_store(oci_server, oci_config, "oci://audit/seals")
    rule = CreateRetentionRuleDetails(display_name="evidence", duration=Duration(time_amount=30, time_unit="DAYS"))  # fmt: skip
    seals.client.create_retention_rule(NAMESPACE, "audit", rule)
    target = TargetUrl.parse("oci://audit/seals")
    assert len(CheckpointShipper(mysql_db, RetentionGuard(seals, 30), target).ship()) == 3
    dsn = mysql_db.url(reveal=True)
    oci = [f"--oci-config-file={oci_config}", f"--oci-endpoint={oci_server.endpoint}"]
    key = [f"--seal-public-key={public_hex(signer.public)}", "--seal-target=oci://audit/seals"]
    capsys.readouterr()
    assert main(["verify", "--archive-dsn", dsn, *key, *oci]) == 0
    out = capsys.readouterr().out
    assert f"sealed {A}: last checkpoint 3 signs link 33 (key {signer.key_id}), 1 event(s)" in out

    # The attacker rewrites event 5 and recomputes every later chain value in the archive,
    # then dumps it to the dump bucket (theirs: no rule there): archive and dumps agree, and
    # each chain verifies.
    index = next(i for i, (n, r) in enumerate(records) if r.get("chain_seq") == 5)
    forged = records[index][1]["raw"].replace("root", "nobody")
    assert forged != records[index][1]["raw"]
    rewrite_archive(mysql_db, rechained(records, index, forged))
    assert rotate_main([f"--archive-dsn={dsn}", "--force"]) == 0
    oci_server.create_bucket("dumps")
    dumps = ["--target=oci://dumps/d", *oci]
    assert upload_main([f"--archive-dsn={dsn}", *dumps, f"--staging-dir={tmp_path}/st"]) == 0
    assert any(n.endswith("manifest.json") for n in oci_server.objects("dumps"))
    capsys.readouterr()
    assert main(["verify", "--archive-dsn", dsn, *dumps]) == 0, capsys.readouterr().out
    # The checkpoint objects cannot be replaced or removed under the rule ...
    name = seals.list("seals/checkpoints/")[0]
    for attempt in (
        lambda: seals._bare_client.put_object(NAMESPACE, "audit", name, b"{}"),
        lambda: seals._bare_client.delete_object(NAMESPACE, "audit", name),
    ):
        with pytest.raises(ServiceError) as refused:
            attempt()
        assert refused.value.status == 409
    # ... and each signed a link that neither store holds any more
    capsys.readouterr()
    assert main(["verify", "--archive-dsn", dsn, *dumps, *key]) == 1
    out = capsys.readouterr().out
    mismatches = [x for x in out.splitlines() if "TAMPER seal_mismatch" in x]
    assert len(mismatches) == 6, out  # 3 checkpoints, in the archive and in the dumps
    assert "checkpoint 1 signed link 10 as" in mismatches[0]


def checkpoint_link(signer: Signer, number: int, state: ChainState) -> Link:
    return Link.control(A, checkpoint.checkpoint_record(signer, state, number, AT), where="x")


def test_unknown_key_bad_signature_and_a_checkpoint_gap_are_reported() -> None:
    signer, stranger = rfc_signer(), Signer(Ed25519PrivateKey.generate())
    keys = Keyring.load([public_hex(signer.public)])
    state = ChainState.start(A).advance_event("2026-12-07 06:00:00", 1, "{}")
    good1, good3 = checkpoint_link(signer, 1, state), checkpoint_link(signer, 3, state)
    unknown = checkpoint_link(stranger, 2, state)
    record = checkpoint.checkpoint_record(signer, state, 4, AT)
    bad = Link.control(A, {**record, "signed_seq": 2}, where="y")
    check = SealCheck(keys, [good1, good3, unknown, bad])
    stored = Link.event(A, "2026-12-07 06:00:00", 1, "{}", chain=state.hash, seq=1)
    assert list(check.watch([stored])) == [stored]
    report = VerifyReport()
    check.finish(report)
    kinds = {f.kind: f for f in report.findings}
    assert set(kinds) == {"unknown_key", "bad_signature", "checkpoint_gap"}
    assert stranger.key_id in kinds["unknown_key"].detail
    assert "checkpoints 2 are missing" in kinds["checkpoint_gap"].detail
    assert not report.intact


def test_an_object_signed_with_an_unknown_key_fails_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stranger = Signer(Ed25519PrivateKey.generate())
    state = ChainState.start(A).advance_event("2026-12-07 06:00:00", 1, "{}")
    record = checkpoint.checkpoint_record(stranger, state, 1, AT)
    folder = tmp_path / "checkpoints" / A
    folder.mkdir(parents=True)
    (folder / "000000000001-x.json").write_text(
        json.dumps({**record, "at": int(checkpoint.now_ms().timestamp() * 1000)})
    )
    empty = tmp_path / "dumps"
    empty.mkdir()
    argv = ["verify", f"--target=file://{empty}", f"--seal-target=file://{tmp_path}",
            f"--seal-public-key={public_hex(rfc_signer().public)}"]  # fmt: skip
    assert main(argv) == 1
    assert f"TAMPER unknown_key: server={A}" in capsys.readouterr().out


def test_a_store_cut_before_a_signed_link_is_truncated_unless_it_need_not_hold_the_tail() -> None:
    signer = rfc_signer()
    keys = Keyring.load([public_hex(signer.public)])
    one = ChainState.start(A).advance_event("2026-12-07 06:00:00", 1, "{}")
    two = one.advance_event("2026-12-07 06:00:01", 2, "{}")
    sealed = checkpoint_link(signer, 1, two)  # signs link 2; the store keeps only link 1
    kept = Link.event(A, "2026-12-07 06:00:00", 1, "{}", chain=one.hash, seq=1)
    for tail, links, expected in (
        (True, [kept], ["truncated"]),
        (False, [kept], []),  # the dumps, a --until range
        (True, [], ["truncated"]),  # the server's links are all gone
    ):
        check = SealCheck(keys, [sealed])
        list(check.watch(links))
        report = VerifyReport()
        check.finish(report, tail=tail)
        assert [f.kind for f in report.findings] == expected


def test_objects_in_the_seal_target_that_are_not_checkpoints_are_reported_not_fatal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    signer = rfc_signer()
    state = ChainState.start(A).advance_event("2026-12-07 06:00:00", 1, "{}")
    good = {**checkpoint.checkpoint_record(signer, state, 1, AT), "at": 1796625000123}
    folder = tmp_path / "checkpoints" / A
    folder.mkdir(parents=True)
    (folder / "000000000001-a.json").write_text(json.dumps(good))
    (folder / "000000000002-b.json").write_bytes(b"\xff not json")
    (folder / "000000000003-c.json").write_text(json.dumps({**good, "at": None}))
    (folder / "000000000004-d.json").write_text(json.dumps({**good, "kind": "heartbeat"}))
    empty = tmp_path / "dumps"
    empty.mkdir()
    argv = ["verify", f"--target=file://{empty}", f"--seal-target=file://{tmp_path}",
            f"--seal-public-key={public_hex(signer.public)}"]  # fmt: skip
    assert main(argv) == 1
    out = capsys.readouterr().out
    bad = [x for x in out.splitlines() if "TAMPER malformed_checkpoint" in x]
    assert len(bad) == 3, out
    assert f"server={A}" in bad[0] and "000000000002-b.json" in bad[0] and "not JSON" in bad[0]
    assert "at is missing" in bad[1] and "not a checkpoint record" in bad[2]
    # the well-formed one is still checked: its signature holds, only no store has link 1
    assert "bad_signature" not in out and "unknown_key" not in out
    assert "last checkpoint 1 signs link 1" in out
    # --server-uuid limits the malformed ones like the others
    assert main([*argv, "--server-uuid=00000000-0000-0000-0000-000000000000"]) == 0


def test_exit_codes_of_the_seal_settings(
    oci_server: OciTestServer, oci_config: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "dumps"
    empty.mkdir()
    base = ["verify", f"--target=file://{empty}"]
    key = f"--seal-public-key={public_hex(rfc_signer().public)}"
    assert main([*base, f"--seal-target=file://{tmp_path}"]) == 2  # a target without a key
    assert main([*base, "--seal-public-key=not-a-key"]) == 2
    assert main([*base, f"--seal-public-key={tmp_path / 'missing.pub'}"]) == 2
    assert main([*base, key, f"--seal-target=file://{tmp_path}"]) == 0  # nothing sealed yet
    oci = [f"--oci-config-file={oci_config}", f"--oci-endpoint={oci_server.endpoint}"]
    assert main([*base, key, "--seal-target=oci://nobucket/seals", *oci]) == 3  # cannot be read


def test_require_seal_makes_a_chain_without_checkpoints_a_finding() -> None:
    """The archive's checkpoints deleted and its chain recomputed: without the seal target only
    --require-seal tells an unsealed chain from a sealed one."""
    keys = Keyring.load([public_hex(rfc_signer().public)])
    one = ChainState.start(A).advance_event("2026-12-07 06:00:00", 1, "{}")
    stored = Link.event(A, "2026-12-07 06:00:00", 1, "{}", chain=one.hash, seq=1)
    for require, kinds in ((False, []), (True, ["unsealed"])):
        check = SealCheck(keys, require=require)
        list(check.watch([stored]))
        report = VerifyReport()
        check.finish(report)
        assert [f.kind for f in report.findings] == kinds
        assert report.intact is not require
        assert check.lines == [f"  sealed {A}: no valid checkpoint; nothing is sealed"]
    check = SealCheck(keys, require=True)  # a server with no link at all is not "unsealed"
    list(check.watch([]))
    report = VerifyReport()
    check.finish(report)
    assert report.findings == []


def test_require_seal_through_the_command(
    archive: tuple[MySQLDsn, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An archive whose chains hold no checkpoint (all deleted, or never sealed)."""
    dsn = archive[0].url(reveal=True)
    key = f"--seal-public-key={public_hex(rfc_signer().public)}"
    assert main(["verify", "--archive-dsn", dsn, "--require-seal"]) == 2  # nothing to check with
    capsys.readouterr()
    assert main(["verify", "--archive-dsn", dsn, key]) == 0
    assert f"sealed {A}: no valid checkpoint; nothing is sealed" in capsys.readouterr().out
    assert main(["verify", "--archive-dsn", dsn, key, "--require-seal"]) == 1
    out = capsys.readouterr().out
    assert f"TAMPER unsealed: server={A} seq=32" in out, out
    assert f"TAMPER unsealed: server={B}" in out
