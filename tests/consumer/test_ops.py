"""The commands ``consumer rotate|upload|restore`` (``consumer.ops``), as an operator runs them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from auditstream import mysql
from auditstream.dsn import MySQLDsn
from auditstream.errors import ConfigError
from consumer.ledger import Ledger
from consumer.ops import restore_main, rotate_main, upload_main
from tests.harness.oci_fixtures import insert_rows, table_rows
from tests.harness.oci_server import NAMESPACE, OciTestServer


def oci_flags(server: OciTestServer, config: Path) -> list[str]:
    return [
        "--target",
        f"oci://audit@{NAMESPACE}/ops",
        "--oci-config-file",
        str(config),
        "--oci-endpoint",
        server.endpoint,
        "--part-size",
        "16KiB",
        "--oci-retries",
        "2",
    ]


def states(dsn: MySQLDsn) -> dict[str, str]:
    ledger = Ledger(mysql.connect(dsn))
    try:
        return {e.table: e.state for e in ledger.all()}
    finally:
        ledger.close()


def test_rotate_upload_restore_commands(
    archive_dsn: MySQLDsn,
    oci_server: OciTestServer,
    oci_config: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = archive_dsn.url(reveal=True)
    insert_rows(archive_dsn, 500)
    assert rotate_main(["--archive-dsn", url]) == 0
    table = capsys.readouterr().out.strip()
    assert table.startswith("audit_data_2") and table_rows(archive_dsn, "audit_data") == []
    original = table_rows(archive_dsn, table)

    staging = ["--staging-dir", str(tmp_path / "staging")]
    flags = oci_flags(oci_server, oci_config)
    assert upload_main(["--archive-dsn", url, *flags, *staging, "--keep-tables", "0"]) == 0
    assert capsys.readouterr().out.strip() == f"verified {table}"
    assert states(archive_dsn) == {table: "dropped"}
    assert f"ops/{table}/manifest.json" in oci_server.objects()
    # nothing pending: a second run does nothing and succeeds
    assert upload_main(["--archive-dsn", url, *flags, *staging]) == 0

    assert restore_main(["--archive-dsn", url, *flags, *staging, "--table", table]) == 0
    assert table_rows(archive_dsn, table) == original


def test_settings_from_environment_file_target_export(
    archive_dsn: MySQLDsn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDITSTREAM_ARCHIVE_DSN", archive_dsn.url(reveal=True))
    monkeypatch.setenv("AUDITSTREAM_TARGET", f"file://{tmp_path}/dumps")
    monkeypatch.setenv("AUDITSTREAM_METHOD", "export")
    monkeypatch.setenv("AUDITSTREAM_STAGING_DIR", str(tmp_path / "staging"))
    insert_rows(archive_dsn, 50)
    assert rotate_main([]) == 0
    assert upload_main([]) == 0
    (table,) = states(archive_dsn)
    assert sorted(p.name for p in (tmp_path / "dumps" / table).iterdir()) == [
        f"{table}.csv",
        "manifest.json",
    ]


def test_rotate_only_when_due_or_forced(archive_dsn: MySQLDsn) -> None:
    url = archive_dsn.url(reveal=True)
    assert rotate_main(["--archive-dsn", url]) == 0  # empty: nothing to rotate
    assert rotate_main(["--archive-dsn", url, "--interval", "1d"]) == 0
    assert states(archive_dsn) == {}
    assert rotate_main(["--archive-dsn", url, "--force"]) == 0
    assert list(states(archive_dsn).values()) == ["rotated"]


def test_bad_flags_are_config_errors(archive_dsn: MySQLDsn) -> None:
    url = archive_dsn.url(reveal=True)
    with pytest.raises(ConfigError, match="interval"):
        rotate_main(["--archive-dsn", url, "--interval", "5x"])
    with pytest.raises(ConfigError, match="target"):
        upload_main(["--archive-dsn", url, "--target", "s3://bucket/x"])
    with pytest.raises(ConfigError, match="table"):
        restore_main(["--archive-dsn", url, "--table", "mysql.user"])


def test_upload_exit_code_says_a_table_needs_an_operator(
    archive_dsn: MySQLDsn, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = archive_dsn.url(reveal=True)
    insert_rows(archive_dsn, 5)
    assert rotate_main(["--archive-dsn", url]) == 0
    table = capsys.readouterr().out.strip()
    conn = mysql.connect(archive_dsn, autocommit=True)
    conn.cursor().execute(f"DROP TABLE {table}")
    conn.close()
    flags = [
        "--archive-dsn",
        url,
        "--target",
        f"file://{tmp_path}/d",
        "--staging-dir",
        str(tmp_path),
    ]
    assert upload_main(flags) == 5
    assert "gone" in capsys.readouterr().out
    assert states(archive_dsn) == {table: "missing"}
    # later runs do not retry it, but keep saying so
    assert upload_main(flags) == 5
    assert capsys.readouterr().out.startswith(f"stuck {table} (missing): ")


def test_python_m_consumer_rotate(archive_dsn: MySQLDsn) -> None:
    insert_rows(archive_dsn, 3)
    proc = subprocess.run(
        [sys.executable, "-m", "consumer", "rotate", "--archive-dsn", archive_dsn.url(reveal=True)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() in states(archive_dsn)
