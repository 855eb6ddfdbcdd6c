"""The command lines: ``python -m emulator`` (serve until SIGTERM) and ``... generate``."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from auditstream import mysql
from auditstream.dsn import MySQLDsn
from auditstream.errors import ConfigError
from emulator.__main__ import main
from emulator.accounts import Account
from emulator.logindex import AuditLogIndex
from tests.harness.net import free_port, wait_for_port

ROOT = Path(__file__).parents[2]


def test_generate_writes_a_reproducible_corpus(tmp_path: Path, capsys) -> None:
    for name in ("a", "b"):
        assert (
            main(["generate", "--log-dir", str(tmp_path / name), "--count", "2500", "--seed", "9"])
            == 0
        )
    assert "wrote 2500 events" in capsys.readouterr().out
    assert (tmp_path / "a" / "audit.log").read_bytes() == (
        tmp_path / "b" / "audit.log"
    ).read_bytes()
    assert (
        main(
            [
                "generate",
                "--log-dir",
                str(tmp_path / "p"),
                "--count",
                "300",
                "--flavor",
                "percona",
                "--rotate-on-size",
                "20000",
                "--compress",
            ]
        )
        == 0
    )
    files = AuditLogIndex(tmp_path / "p", "audit_filter", "log").refresh()
    assert len(files) > 2 and files[0].compressed
    assert sum(f.count for f in files) == 300


def test_serve_until_sigterm(tmp_path: Path, mysql_server) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ops.cli",
            "emulator",
            "--port",
            str(port),
            "--log-dir",
            str(tmp_path),
            "--flavor",
            "percona",
            "--server-uuid",
            "11111111-2222-3333-4444-555555555555",
            "--backend-dsn",
            mysql_server.dsn.url(reveal=True),
            "--user",
            "reader:pw:AUDIT_ADMIN",
        ],
        cwd=ROOT,
    )
    try:
        wait_for_port("127.0.0.1", port, 30, what="emulator", alive=lambda: proc.poll() is None)
        conn = mysql.connect(MySQLDsn(user="reader", password="pw", port=port))
        cur = conn.cursor()
        cur.execute("SELECT @@server_uuid, @@audit_log_filter_read_buffer_size")
        assert cur.fetchall() == [("11111111-2222-3333-4444-555555555555", 32768)]
        conn.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("text", ["nopassword", ":pw", "u:pw:FLY"])
def test_bad_user_flags_are_config_errors(text: str) -> None:
    with pytest.raises(ConfigError):
        Account.parse(text)


def test_user_flag_privileges() -> None:
    assert Account.parse("a:b").is_audit_admin
    assert not Account.parse("a:b:NONE").is_audit_admin
    assert Account.parse("a:b:AUDIT_ADMIN,SYSTEM_VARIABLES_ADMIN").privileges == {
        "AUDIT_ADMIN",
        "SYSTEM_VARIABLES_ADMIN",
    }
