"""The command line: ``python -m producer [setup]``, ``--help``, exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mysql.connector
import pytest

from auditstream.dsn import MySQLDsn
from ops import cli
from producer.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("args", [["--help"], ["setup", "--help"]])
def test_help_works_and_lists_the_contract_flags(args: list[str]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "producer", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    for flag in ("--source-dsn", "--bookmark-dsn", "--source-password-file"):
        assert flag in out.stdout
    if args == ["--help"]:
        for flag in (
            "--bootstrap-servers", "--topic", "--control-topic", "--schema-registry-url",
            "--start-from", "--allow-self-audit", "--kafka-config", "--read-buffer-size",
            "--batch-events", "--partitions", "--heartbeat-interval", "--once", "--log-json",
        ):  # fmt: skip
            assert flag in out.stdout


def test_setup_creates_audit_config_idempotently(mysql_db: MySQLDsn) -> None:
    url = mysql_db.url(reveal=True)
    assert main(["setup", "--bookmark-dsn", url]) == 0
    assert cli.main(["producer", "setup", "--bookmark-dsn", url]) == 0  # again, via the front door
    conn = mysql.connector.connect(**mysql_db.connect_kwargs())
    cur = conn.cursor()
    cur.execute("SHOW TABLES")
    assert ("audit_config",) in cur.fetchall()
    conn.close()


def test_missing_source_is_exit_code_2_with_the_flag_named(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["producer", "--once"]) == 2
    assert "--source-dsn" in capsys.readouterr().err


def test_metrics_endpoint_serves_producer_counters_while_running(
    mysql_server: object, bootstrap: str, unique_name: object, tmp_path: Path
) -> None:
    """The readiness and the counters of a running producer (against a dead source: not ready)."""
    import time
    import urllib.error
    import urllib.request

    from auditstream.embedded import free_port

    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "producer",
            "--source-dsn",
            f"mysql://nobody@127.0.0.1:{free_port()}",
            "--bootstrap-servers",
            bootstrap,
            "--metrics-port",
            str(port),
            "--backoff-max",
            "0.5",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        status = None
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2)
                status = 200
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                time.sleep(0.2)
                continue
            break
        assert status == 503  # the source is unreachable: running, retrying, not ready
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
            assert resp.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
            assert b"auditstream_producer_events_acked" in resp.read()
    finally:
        proc.terminate()
        assert proc.wait(30) == 0  # SIGTERM while retrying the start: a clean exit
