"""The dump reader on real dumps (``consumer.dump``) of real tables: replaced objects are named."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import zstandard

from auditstream.dsn import MySQLDsn
from auditstream.mysql import Connection
from consumer.dumpformat import DumpObject
from ops.cli import main as cli_main
from ops.verify import tables, verify
from ops.verify.dumps import DumpReader, FileObjects, target_dir
from tests.harness.oci_server import NAMESPACE
from tests.ops.verify.conftest import ROTATED, A, B

dump = pytest.importorskip("consumer.dump", reason="consumer.dump is not in this checkout")
SECOND = "audit_data_20260102_000000"


@pytest.fixture
def dumped(archive: tuple[MySQLDsn, Connection], tmp_path: Path) -> tuple[Path, Connection]:
    """Both halves of the archive dumped to a file:// target: one ``dump``, one ``export``."""
    conn = archive[1]
    conn.cursor().execute(f"RENAME TABLE audit_data TO `{SECOND}`")
    dump.dump_table(conn, ROTATED, tmp_path / ROTATED, method="dump", chunk_rows=7)
    dump.dump_table(conn, SECOND, tmp_path / SECOND, method="export")
    return tmp_path, conn


def check(root: Path, conn: Connection) -> tuple[DumpReader, list[str]]:
    reader = DumpReader(FileObjects(target_dir(f"file://{root}")))
    report = verify(reader.links(extras=tables.gaps(conn, A)))
    return reader, [f"{f.kind} {f.seq} {f.where}" for f in report.findings]


def test_untouched_dumps_are_intact_and_link_to_each_other(dumped: tuple[Path, Connection]) -> None:
    reader, findings = check(*dumped)
    assert findings == [] and reader.findings == []
    assert reader.tables == [ROTATED, SECOND]
    report = verify(reader.links(extras=tables.gaps(dumped[1], A)))
    assert report.servers[A].links == 32 and report.servers[A].anchored_start
    assert report.servers[B].links == 5


def test_a_replaced_object_is_named_with_the_row_that_changed(
    dumped: tuple[Path, Connection],
) -> None:
    root, conn = dumped
    chunk = root / ROTATED / f"{ROTATED}@1.tsv.zst"
    lines = (
        zstandard.ZstdDecompressor()
        .decompress(chunk.read_bytes(), max_output_size=1 << 24)
        .split(b"\n")
    )
    lines[2] = lines[2].replace(b'"class": "general"', b'"class": "GENERAL"', 1)
    chunk.write_bytes(zstandard.ZstdCompressor().compress(b"\n".join(lines)))
    reader, findings = check(root, conn)
    assert [f.where for f in reader.findings] == [f"object {ROTATED}/{ROTATED}@1.tsv.zst"]
    assert "differs from the manifest" in reader.findings[0].detail
    assert len(findings) == 1 and findings[0].startswith("altered ")
    assert findings[0].endswith(f"object {ROTATED}/{ROTATED}@1.tsv.zst line 3")


def test_a_line_removed_from_an_export_is_a_deleted_link(dumped: tuple[Path, Connection]) -> None:
    root, conn = dumped
    export = root / SECOND / f"{SECOND}.csv"
    lines = export.read_bytes().split(b"\r\n")
    del lines[4]
    export.write_bytes(b"\r\n".join(lines))
    reader, findings = check(root, conn)
    assert {f.where for f in reader.findings} == {
        f"object {SECOND}/{SECOND}.csv",
        f"object {SECOND}/manifest.json",
    }
    # lines 1.. hold links 16..; link 20 was removed, so link 21 now sits on line 5
    assert findings == [f"deleted 21 object {SECOND}/{SECOND}.csv line 5"]


DOC = Path(__file__).resolve().parents[3] / "docs" / "tamper-evidence.md"


def hand_check(dump_dir: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run docs/tamper-evidence.md's standalone example, as an auditor would."""
    script = DOC.read_text(encoding="utf-8").split("```python\n")[-1].split("```")[0]
    path = tmp_path / "check.py"
    path.write_text(script, encoding="utf-8")
    return subprocess.run(
        [sys.executable, str(path), str(dump_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_documented_hand_check_verifies_an_export(
    archive: tuple[MySQLDsn, Connection], tmp_path: Path
) -> None:
    out_dir = tmp_path / ROTATED
    dump.dump_table(archive[1], ROTATED, out_dir, method="export")
    done = hand_check(out_dir, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "line 12: links 12..12 are elsewhere (gaps, earlier dumps)",
        f"intact: {{'{A}': 15, '{B}': 5}}",
    ]
    export = out_dir / f"{ROTATED}.csv"
    export.write_bytes(export.read_bytes().replace(b"socket", b"sockeT", 1))
    done = hand_check(out_dir, tmp_path)
    assert (
        done.returncode == 1
        and done.stderr.startswith("line ")
        and f"of {A} does not match" in done.stderr
    )


def test_the_manifests_first_and_last_links_are_checked(dumped: tuple[Path, Connection]) -> None:
    """The rotation manifest records each server's first and last link (integration proposal)."""
    root, conn = dumped
    path = root / ROTATED / "manifest.json"
    manifest = json.loads(path.read_bytes())
    links = [
        x for x in DumpReader(FileObjects(root), tables=[ROTATED]).links() if x.server_uuid == A
    ]
    entry = manifest["bookmarks"][A]
    entry["first_link"] = [links[0].seq, links[0].chain]
    entry["last_link"] = [links[-1].seq, links[-1].chain]
    path.write_text(json.dumps(manifest))
    reader, findings = check(root, conn)
    assert findings == [] and reader.findings == []
    entry["last_link"] = [links[-2].seq, links[-2].chain]  # a row appended after the dump
    path.write_text(json.dumps(manifest))
    reader, _ = check(root, conn)
    [f] = reader.findings
    assert f.where == f"object {ROTATED}/manifest.json" and f.detail.startswith(
        f"last_link of {A} is [14, "
    )


def test_a_missing_object_is_named_and_its_links_are_missing(
    dumped: tuple[Path, Connection],
) -> None:
    root, conn = dumped
    (root / ROTATED / f"{ROTATED}@1.tsv.zst").unlink()  # links 8..11 and 13..15 of server A
    reader, findings = check(root, conn)
    assert [(f.where, f.detail) for f in reader.findings][:2] == [
        (f"object {ROTATED}/{ROTATED}@1.tsv.zst", "cannot be read: No such file or directory"),
        (f"object {ROTATED}/manifest.json", "lists 19 rows, the objects hold 12"),
    ]
    # the manifest records each server's last link, so the lost tail is named there too
    assert len(reader.findings) == 3
    assert reader.findings[2].where == f"object {ROTATED}/manifest.json"
    assert reader.findings[2].detail.startswith("last_link of 3e11fa47-")
    # the hole is seen at the next links the stores still hold: the gap (in audit_control) and
    # the first row of the next dump
    assert findings == [
        "deleted 12 table audit_control row (mysql.audit.control/0@11)",
        f"deleted 16 object {SECOND}/{SECOND}.csv line 1",
    ]


def test_dumps_uploaded_to_oci_and_a_replaced_object(
    archive: tuple[MySQLDsn, Connection],
    tmp_path: Path,
    oci_server: Any,
    oci_config: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Through the consumer's own OciStore against the OCI test server (real oci SDK)."""
    upload = pytest.importorskip("consumer.upload")
    targets = pytest.importorskip("consumer.targets")
    options = upload.OciOptions(
        config_file=oci_config, endpoint=oci_server.endpoint, retry_attempts=1
    )
    target = targets.TargetUrl.parse(f"oci://audit@{NAMESPACE}/arch")
    store = upload.OciStore(target, options)
    manifest = dump.dump_table(archive[1], ROTATED, tmp_path / ROTATED, chunk_rows=7)
    data = (tmp_path / ROTATED / "manifest.json").read_bytes()
    listed = DumpObject("manifest.json", len(data), hashlib.sha256(data).hexdigest())
    for obj in [*manifest.objects, listed]:
        store.put_file(target.object_name(ROTATED, obj.name), tmp_path / ROTATED / obj.name, obj)
    gaps = tables.gaps(archive[1], A)
    reader = DumpReader(store, prefix="arch")
    report = verify(reader.links(gaps))
    assert reader.tables == [ROTATED] and reader.findings == [] and report.intact
    assert report.servers[A].links == 15
    argv = ["verify", "--target", f"oci://audit@{NAMESPACE}/arch", "--oci-config-file", str(oci_config),
            "--oci-endpoint", oci_server.endpoint, "--archive-dsn", archive[0].url(reveal=True)]  # fmt: skip
    assert cli_main(argv) == 0, capsys.readouterr()
    # someone with write access replaces chunk 0 by a copy with one event changed
    name = target.object_name(ROTATED, f"{ROTATED}@0.tsv.zst")
    data = zstandard.ZstdDecompressor().decompress(
        b"".join(store.read(name)), max_output_size=1 << 24
    )
    forged = zstandard.ZstdCompressor().compress(
        data.replace(b"skip-grants user", b"skip-grants usEr", 1)
    )
    store.client.put_object(NAMESPACE, "audit", name, forged)
    reader = DumpReader(store, prefix="arch")
    report = verify(reader.links(gaps))
    assert [f.where for f in reader.findings] == [f"object {ROTATED}/{ROTATED}@0.tsv.zst"]
    assert [(f.kind, f.seq, f.where) for f in report.findings] == [
        ("altered", 1, f"object {ROTATED}/{ROTATED}@0.tsv.zst line 1")
    ]
    capsys.readouterr()
    assert cli_main(argv) == 1
    out = capsys.readouterr().out
    assert f"dumps oci://audit@{NAMESPACE}/arch: NOT INTACT" in out
    assert (
        f"TAMPER object_mismatch: server=- bookmark=- at object {ROTATED}/{ROTATED}@0.tsv.zst"
        in out
    )


def test_manifests_record_each_servers_first_and_last_link_so_dumps_link_up(
    dumped: tuple[Path, Connection],
) -> None:
    root, _ = dumped
    first = json.loads((root / ROTATED / "manifest.json").read_text())["bookmarks"]
    second = json.loads((root / SECOND / "manifest.json").read_text())["bookmarks"]
    assert set(first) & set(second), "both dumps hold events of one server"
    for server in set(first) & set(second):
        last_seq, last_hash = first[server]["last_link"]
        next_seq, _ = second[server]["first_link"]
        assert next_seq > last_seq and len(last_hash) == 64
    assert all("first_link" in entry and "last_link" in entry for entry in first.values())
