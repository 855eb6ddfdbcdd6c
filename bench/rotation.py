"""Rotation pause and dump + upload throughput, with the shipped ``consumer rotate|upload``.

1. Fill ``audit_data`` with ``rotation_rows`` rows of the run's corpus (``LOAD DATA``; copies
   get their own ``server_uuid`` so keys stay unique).
2. An inserter commits single-row inserts into ``audit_data`` as fast as it can while
   ``python -m consumer rotate`` runs; the rotation pause is the longest gap between two
   consecutive commits around the command (the inserter's ordinary gap is printed next to it).
3. ``python -m consumer upload --method dump`` writes the rotated table to the OCI Object
   Storage test server (``tests.harness.oci_server``, the one the upload tests use) through the
   real ``oci`` SDK; throughput is rows and uncompressed TSV bytes of the table per second of
   the command's wall time (start-up included: it is a cron job).

Trap: the OCI test server runs inside the benchmark process (threads, in memory); on 2 cores it
competes with the upload for CPU, so the figure is a floor for a real endpoint's, not a ceiling.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from auditstream import mysql
from auditstream.dsn import MySQLDsn
from bench import components, limits
from bench.measure import Figure, percentile
from bench.run import Run

BASE_ROWS = 20_000


class Inserter(threading.Thread):
    """Single-row autocommit inserts into ``audit_data``; records when each commit returned."""

    def __init__(self, archive: MySQLDsn) -> None:
        super().__init__(daemon=True)
        self.archive = archive
        self.commits: list[float] = []
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        """Insert until stopped."""
        try:
            conn = mysql.connect(self.archive, autocommit=True)
            cur = conn.cursor()
            server = f"bench-inserter-{uuid.uuid4().hex[:8]}"
            n = 0
            while not self.stop_event.is_set():
                cur.execute(
                    "INSERT INTO audit_data (server_uuid, ts, id, class, event, raw) "
                    "VALUES (%s, UTC_TIMESTAMP(), %s, 'general', 'status', '{}')",
                    (server, n),
                )
                self.commits.append(time.perf_counter())
                n += 1
            conn.close()
        except BaseException as exc:  # noqa: BLE001 - reported by the stage
            self.error = exc


def fill(run: Run, archive: MySQLDsn, rows: int) -> tuple[int, int]:
    """Load ``rows`` rows into ``audit_data``; returns ``(rows, TSV bytes)``."""
    written, _ = run.need_source()
    events = written.raw_events()[:BASE_ROWS]
    columns = _columns(archive)
    base = limits.to_tsv("x", events, columns).splitlines(keepends=True)
    files: list[Path] = []
    copies = -(-rows // len(base))
    left = rows
    for k in range(copies):
        take = base[: min(left, len(base))]
        # server_uuid is the first column: each copy is another server, so keys stay unique.
        prefix = f"bench-rot-{k:05d}".encode()
        path = run.path(f"rotation/rows-{k:05d}.tsv")
        path.write_bytes(b"".join(prefix + line[1:] for line in take))
        files.append(path)
        left -= len(take)
    limits.load_data(archive, files, rows, columns)
    return rows, sum(f.stat().st_size for f in files)


def rotation_stage(run: Run) -> None:
    """Fill, rotate under inserts, then dump + upload the rotated table."""
    from tests.harness.oci_server import NAMESPACE, OciTestServer, write_oci_config

    archive = run.stack.database("bench_rotation")
    components.consumer_setup(archive, run.path("logs/rotation-setup.log"))
    rows, nbytes = fill(run, archive, run.sizes.rotation_rows)

    inserter = Inserter(archive)
    inserter.start()
    time.sleep(1.0)
    rotate = components.consumer_command("rotate", archive, run.path("logs/rotate.log"), "--force")
    result = rotate.wait(300).ok("consumer rotate")
    time.sleep(1.0)
    inserter.stop_event.set()
    inserter.join(10)
    if inserter.error is not None:
        raise RuntimeError(f"the inserter failed: {inserter.error}")
    window = (rotate.started, rotate.started + result.seconds + 0.5)
    commits = [t for t in inserter.commits if window[0] - 1.0 <= t <= window[1]]
    gaps = [b - a for a, b in itertools.pairwise(commits)]
    if not gaps:
        raise RuntimeError("no insert committed around the rotation")
    rotated = _rotated_tables(archive)
    if not rotated:
        raise RuntimeError("consumer rotate left no audit_data_<ts> table")
    stage = "rotation (RENAME under inserts)"
    run.add(
        Figure(
            stage,
            "longest insert pause",
            1000 * max(gaps),
            "ms",
            note=f"{rows:,}-row table; ordinary gap p50 {1000 * percentile(gaps, 50):.1f} ms; "
            f"{len(commits):,} single-row commits around `consumer rotate` "
            f"({result.seconds:.1f} s wall); goal < 1000 ms",
        )
    )

    server = OciTestServer().start()
    try:
        server.create_bucket("audit")
        oci_dir = run.path("oci")
        oci_dir.mkdir(exist_ok=True)
        config = write_oci_config(oci_dir)
        upload = components.consumer_command(
            "upload",
            archive,
            run.path("logs/upload.log"),
            "--target",
            f"oci://audit@{NAMESPACE}/bench",
            "--method",
            "dump",
            "--oci-config-file",
            str(config),
            "--oci-endpoint",
            server.endpoint,
            "--staging-dir",
            str(run.path("staging")),
        )
        up = upload.wait(1800).ok("consumer upload")
        stored = server.objects("audit")
    finally:
        server.stop()
    if not any(name.endswith("manifest.json") for name in stored):
        raise RuntimeError(f"no manifest.json among {len(stored)} uploaded objects")
    uploaded = sum(len(v) for v in stored.values())
    stage = "dump + upload (OCI test server)"
    note = (
        f"{rows:,} rows, {nbytes / 1e6:.0f} MB as TSV → {uploaded / 1e6:.0f} MB in "
        f"{len(stored)} objects (zstd); wall {up.seconds:.1f} s incl. start-up; "
        f"peak RSS {up.peak_rss_mb:.0f} MB"
    )
    run.add(Figure(stage, "rows/s", rows / up.seconds, "rows/s", note=note))
    run.add(Figure(stage, "MB/s (uncompressed TSV)", nbytes / 1e6 / up.seconds, "MB/s"))


def _columns(archive: MySQLDsn) -> list[str]:
    conn = mysql.connect(archive, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE()"
            " AND table_name = 'audit_data' ORDER BY ordinal_position"
        )
        found: list[Any] = cur.fetchall()
        return [str(name) for (name,) in found]
    finally:
        conn.close()


def _rotated_tables(archive: MySQLDsn) -> list[str]:
    conn = mysql.connect(archive, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute("SHOW TABLES LIKE 'audit\\_data\\_2%'")
        found: list[Any] = cur.fetchall()
        return [str(name) for (name,) in found]
    finally:
        conn.close()
