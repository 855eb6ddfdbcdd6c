"""The consumer as a service: metrics and health while it runs, rotation and upload inside it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from auditstream.dsn import MySQLDsn
from auditstream.embedded import free_port
from consumer.__main__ import main
from tests.consumer.conftest import RecordFactory, query
from tests.consumer.kafkatools import create_topics, produce

SERVERS = ["30000000-0000-0000-0000-000000000001"]

ROOT = Path(__file__).resolve().parents[2]


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def test_consumer_serves_metrics_and_rotates_and_uploads_inside(
    bootstrap: str,
    mysql_db: MySQLDsn,
    names: dict[str, str],
    records: RecordFactory,
    tmp_path: Path,
) -> None:
    dsn = mysql_db.url(reveal=True)
    assert main(["setup", "--archive-dsn", dsn]) == 0
    create_topics(bootstrap, names["topic"], names["control"], partitions=2)
    produce(bootstrap, names["topic"], records(SERVERS[0], 300))
    port = free_port()
    objects = tmp_path / "objects"
    proc = subprocess.Popen(
        [sys.executable, "-m", "consumer", "--archive-dsn", dsn, "--bootstrap-servers", bootstrap,
         "--topic", names["topic"], "--control-topic", names["control"], "--dlq-topic", names["dlq"],
         "--group", names["group"], "--kafka-config", "session.timeout.ms=2000",
         f"--metrics-port={port}", "--rotate-interval=none", "--rotate-max-rows=100",
         "--rotate-check-seconds=0.5", f"--target=file://{objects}", f"--staging-dir={tmp_path / 'staging'}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=os.environ.copy(),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        verified = 0
        while time.monotonic() < deadline:
            rows = query(
                mysql_db,
                "SELECT COALESCE(SUM(row_count), 0) FROM audit_rotation WHERE state = 'verified'",
            )
            verified = int(rows[0][0]) if rows else 0
            if verified == 300:
                break
            time.sleep(0.5)
        if verified != 300:
            proc.send_signal(signal.SIGTERM)
            raise AssertionError(proc.communicate(timeout=60)[0].decode(errors="replace")[-4000:])
        status, body = get(port, "/metrics")
        assert status == 200
        assert f'auditstream_consumer_rows_inserted_total{{topic="{names["topic"]}"}} 300.0' in body
        assert (
            "auditstream_rotations_total 1.0" in body or "auditstream_rotations_total 2.0" in body
        )
        assert 'auditstream_dumps_total{method="dump"}' in body
        assert "auditstream_uploads_total" in body
        assert get(port, "/healthz")[0] == 200
        assert get(port, "/readyz") == (200, "ready\n")
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=60)[0].decode(errors="replace")
    assert proc.returncode == 0, out[-3000:]
    # Every row is in exactly one verified object set, and in no table twice.
    assert query(mysql_db, "SELECT COUNT(*) FROM audit_data")[0][0] == 0
    manifests = [json.loads(p.read_text()) for p in objects.rglob("manifest.json")]
    assert sum(m["rows"] for m in manifests) == 300
