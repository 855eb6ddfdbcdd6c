"""Producer and consumer stages: the shipped commands, measured from the outside.

- Producer: ``python -m producer --once`` drains the run's corpus from the emulator into the
  broker. The rate is the span of the messages' CreateTime in the topic (``bench.topic``), which
  also proves every event arrived; the whole command's wall time and its start-up alone (the
  same command on an empty log) are printed next to it. Success is what an operator sees: exit
  0, every event in the topic, and the stored bookmark at the corpus' last event.
- Consumer: several emulated servers (one key, so one partition, each) are produced into one
  topic first; then 1, 2 and 3 ``python -m consumer --once`` processes in a fresh group drain
  it into a fresh archive database. The clock runs from the first row appearing in
  ``audit_data`` to the last member's exit (group joins are not insert speed), and the row
  count must equal the events produced.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from auditstream import mysql
from auditstream.dsn import MySQLDsn
from auditstream.verify.tables import event_tables
from bench import components, corpus, topic
from bench.components import Topics
from bench.measure import Figure
from bench.run import Run


def producer_stage(run: Run) -> None:
    """Producer events/s, MB/s, page cycle and peak RSS, against the limit and the baseline."""
    written, source = run.need_source()
    topics = Topics.named(f"bench.prod.{uuid.uuid4().hex[:8]}")

    empty_dir = run.path("corpus/empty")
    corpus.write_empty(empty_dir)
    empty = run.stack.emulator(empty_dir)
    empty_bm = run.stack.database("bench_producer_empty")
    components.producer_setup(empty_bm, run.path("logs/producer-setup-empty.log"))
    startup = (
        components.producer(
            empty,
            run.stack.bootstrap,
            topics,
            empty_bm,
            run.path("logs/producer-empty.log"),
            once=True,
        )
        .wait(120)
        .ok("producer on an empty log")
    )
    run.stack.stop_emulator(empty)

    bookmarks = run.stack.database("bench_producer")
    components.producer_setup(bookmarks, run.path("logs/producer-setup.log"))
    result = (
        components.producer(
            source,
            run.stack.bootstrap,
            topics,
            bookmarks,
            run.path("logs/producer.log"),
            once=True,
            profile=run.profile_out("producer"),
        )
        .wait(900)
        .ok("producer")
    )
    stored = _bookmark(bookmarks, source.server_uuid)
    if stored != written.last:
        raise RuntimeError(f"producer stored bookmark {stored}, the log ends at {written.last}")

    sent = topic.scan(run.stack.bootstrap, topics.events, written.count)
    drain = max(sent.span_seconds, 1e-3)
    stage = "producer (emulator → broker)"
    note = (
        f"{written.count:,} events, first to last CreateTime; whole command {result.seconds:.1f} s "
        f"(start-up alone {startup.seconds:.1f} s); acks=all, idempotent, Avro single-object "
        f"({sent.nbytes / written.count:.0f} B/msg)"
    )
    run.add(
        Figure(
            stage,
            "events/s",
            written.count / drain,
            "ev/s",
            baseline=run.ref("baseline.rows_s"),
            limit=run.ref("limit.producer.ev_s"),
            note=note,
        ),
        "producer.ev_s",
    )
    run.add(
        Figure(
            stage,
            "MB/s (source bytes)",
            written.nbytes / 1e6 / drain,
            "MB/s",
            baseline=run.ref("baseline.mb_s"),
            limit=run.ref("limit.producer.mb_s"),
        )
    )
    pages = run.ref("limit.read.pages")
    if pages:
        run.add(
            Figure(
                stage,
                "page cycle (mean)",
                1000 * drain / pages,
                "ms",
                limit=run.ref("limit.read.page_ms"),
                note=f"{pages:.0f} pages of 4 MB: read + parse + encode + produce + acks + "
                "bookmark; limit = the bare read's p50",
            )
        )
    run.add(
        Figure(
            stage,
            "peak RSS",
            result.peak_rss_mb,
            "MB",
            note=f"backlog of {written.nbytes / 1e6:.0f} MB; goal < 300 MB",
        )
    )


def consumer_stage(run: Run) -> None:
    """Rows/s into MariaDB for 1, 2 and 3 consumer processes in one group."""
    sizes = run.sizes
    topics = Topics.named(f"bench.cons.{uuid.uuid4().hex[:8]}")
    bookmarks = run.stack.database("bench_consumer_bm")
    components.producer_setup(bookmarks, run.path("logs/cons-producer-setup.log"))
    total = 0
    producers = []
    servers = []
    for i in range(sizes.servers):
        written = corpus.write(
            run.path(f"corpus/server{i}"), sizes.consumer_events_per_server, seed=sizes.seed + i
        )
        total += written.count
        server = run.stack.emulator(written.log_dir)
        servers.append(server)
        producers.append(
            components.producer(
                server,
                run.stack.bootstrap,
                topics,
                bookmarks,
                run.path(f"logs/cons-producer-{i}.log"),
                once=True,
            )
        )
    for child in producers:
        child.wait(900).ok("producer (consumer stage)")
    for server in servers:
        run.stack.stop_emulator(server)

    for members in (1, 2, 3):
        archive = run.stack.database(f"bench_consumer_{members}")
        components.consumer_setup(archive, run.path(f"logs/consumer-setup-{members}.log"))
        group = f"bench-{members}-{uuid.uuid4().hex[:8]}"
        children = [
            components.consumer(
                archive,
                run.stack.bootstrap,
                topics,
                group,
                run.path(f"logs/consumer-{members}-{k}.log"),
                once=True,
                profile=run.profile_out("consumer") if members == 1 else None,
            )
            for k in range(members)
        ]
        first_row = _wait_first_row(archive, timeout=120)
        results = [c.wait(900).ok("consumer") for c in children]
        ended = max(c.started + r.seconds for c, r in zip(children, results, strict=True))
        rows = _count(archive)
        if rows != total:
            raise RuntimeError(f"{members} consumer(s) wrote {rows} rows of {total}")
        seconds = max(ended - first_row, 1e-3)
        stage = f"consumer x{members} (broker → audit_data)"
        run.add(
            Figure(
                stage,
                "rows/s",
                rows / seconds,
                "rows/s",
                baseline=run.ref("baseline.rows_s"),
                limit=run.ref("limit.load.rows_s"),
                note=f"{rows:,} rows from {sizes.servers} servers (keys); first row → last exit; "
                f"peak RSS {max(r.peak_rss_mb for r in results):.0f} MB per process",
            ),
            f"consumer{members}.rows_s",
        )
        if members == 1:
            run.add(Figure(stage, "peak RSS", results[0].peak_rss_mb, "MB"), "consumer1.rss_mb")
        if members > 1:
            run.add(
                Figure(
                    stage,
                    "rows/s per process",
                    rows / seconds / members,
                    "rows/s",
                    baseline=run.ref("baseline.rows_s"),
                    limit=run.ref("limit.load.rows_s"),
                )
            )


def _query(dsn: MySQLDsn, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    conn = mysql.connect(dsn, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute(sql, params)
        return list(cur.fetchall())
    finally:
        conn.close()


def _bookmark(dsn: MySQLDsn, server_uuid: str) -> tuple[str, int] | None:
    rows = _query(dsn, "SELECT ts, id FROM audit_config WHERE server_uuid = %s", (server_uuid,))
    if not rows:
        return None
    ts, ident = rows[0]
    return (ts.strftime("%Y-%m-%d %H:%M:%S") if hasattr(ts, "strftime") else str(ts), int(ident))


def _count(dsn: MySQLDsn) -> int:
    """Rows in ``audit_data`` and the rotated tables (the consumers rotate at UTC midnight)."""
    conn = mysql.connect(dsn, autocommit=True)
    try:
        tables = event_tables(conn)
    finally:
        conn.close()
    return sum(int(_query(dsn, f"SELECT count(*) FROM `{t}`")[0][0]) for t in tables)


def _wait_first_row(dsn: MySQLDsn, timeout: float) -> float:
    """The moment the first row is visible in ``audit_data`` (polled every 20 ms)."""
    conn = mysql.connect(dsn, autocommit=True)
    deadline = time.monotonic() + timeout
    try:
        cur = conn.cursor()
        while time.monotonic() < deadline:
            cur.execute("SELECT 1 FROM audit_data LIMIT 1")
            if cur.fetchall():
                return time.perf_counter()
            time.sleep(0.02)
    finally:
        conn.close()
    raise RuntimeError(f"no row reached audit_data within {timeout:.0f} s")
