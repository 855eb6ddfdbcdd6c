"""``python -m emulator.benchmark``: the emulator's own figures (a benchmark, never a test).

1. Generator: events/s written straight to a log file (plugin spacing and compact).
2. Serving: consecutive 4 MB ``audit_log_read()`` pages over the MySQL protocol, read by
   mysql-connector-python's C extension from a ``python -m emulator`` child process: MB/s and
   events/s of page payload.
"""

from __future__ import annotations

import argparse
import json
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from auditstream import mysql
from auditstream.dsn import MySQLDsn
from emulator.logfile import AuditLogWriter
from emulator.traffic import write_events

PAGE = 4194304


def _generate(directory: Path, count: int, compact: bool) -> tuple[float, int]:
    writer = AuditLogWriter(directory, flush_each=False)
    began = time.perf_counter()
    write_events(writer, count, seed=1, compact=compact)
    writer.close()
    took = time.perf_counter() - began
    return count / took, (directory / "audit.log").stat().st_size


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(directory: Path, rounds: int) -> tuple[float, float, int, float]:
    port = _free_port()
    child = subprocess.Popen(  # noqa: S603 - our own module
        [
            sys.executable,
            "-m",
            "emulator",
            "--port",
            str(port),
            "--log-dir",
            str(directory),
            "--user",
            "bench:bench-pw:AUDIT_ADMIN",
            "--log-level",
            "WARNING",
        ],
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        conn = mysql.connect(
            MySQLDsn.parse(f"mysql://bench:bench-pw@127.0.0.1:{port}"), autocommit=True
        )
        cur = conn.cursor()
        cur.execute(f"SET SESSION audit_log_read_buffer_size = {PAGE}")
        warm = time.perf_counter()
        first = '{"max_array_length": 1, "start": {"timestamp": "2000-01-01"}}'
        cur.execute("SELECT audit_log_read(%s)", (first,))
        cur.fetchall()
        warmup = time.perf_counter() - warm  # the server indexes the files on the first read
        nbytes = events = 0
        began = time.perf_counter()
        for _ in range(rounds):
            cur.execute("""SELECT audit_log_read('{"start": {"timestamp": "2000-01-01"}}')""")
            while True:
                (row,) = cur.fetchall()
                page = _bytes(row[0])  # type: ignore[index]  # a tuple row, not a dict
                nbytes += len(page)
                events += page.count(b"\n") - 1
                if page.endswith(b"null\n]"):
                    break
                cur.execute("SELECT audit_log_read()")
        took = time.perf_counter() - began
        conn.close()
        return nbytes / took / 1e6, events / took, nbytes, warmup
    finally:
        child.terminate()
        child.wait(20)


def _bytes(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise TypeError(f"audit_log_read returned {type(value).__name__}, not bytes")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run both measurements and print them as one JSON object."""
    p = argparse.ArgumentParser(prog="python -m emulator.benchmark", description=__doc__)
    p.add_argument("--events", type=int, default=500_000)
    p.add_argument("--rounds", type=int, default=2, help="full passes over the corpus")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="emulator-bench-") as tmp:
        base = Path(tmp)
        compact_rate, _ = _generate(base / "compact", args.events, compact=True)
        plugin_rate, size = _generate(base / "plugin", args.events, compact=False)
        mb_s, ev_s, served, warmup = _serve(base / "plugin", args.rounds)
    figures = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()} python {platform.python_version()}",
        "generator_events_per_s_plugin_spacing": round(plugin_rate),
        "generator_events_per_s_compact": round(compact_rate),
        "corpus_bytes": size,
        "served_bytes": served,
        "serve_4mb_pages_mb_per_s": round(mb_s, 1),
        "serve_4mb_pages_events_per_s": round(ev_s),
        "first_read_indexing_s": round(warmup, 2),
    }
    print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
