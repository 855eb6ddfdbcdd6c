"""Producer and consumer stages: the shipped commands, measured from the outside.

- Producer: ``python -m producer --once`` drains the run's corpus from the emulator into the
  broker. The rate is the span of the messages' CreateTime in the topic (``bench.topic``), which
  also proves every event arrived; the whole command's wall time and its start-up alone (the
  same command on an empty log) are printed next to it. Success is what an operator sees: exit
  0, every event in the topic, and the stored bookmark at the corpus' last event.
- Consumer: several emulated servers (one key, so one partition, each) are produced into one
  topic first; then 1, 2 and 3 ``python -m consumer --once`` processes in a fresh group drain
  it into a fresh archive database. The rate is the drain between the first and the last
  committed transaction: a poller reads the archived offsets (``audit_offsets``, written in
  the same transaction as the rows) every 20 ms; the clock starts when the first batch is
  visible and stops when every event is, and the rows of that first batch (written before
  the clock started) are not counted. Group joins and ``--once``'s exit (leaving the group,
  closing the DLQ producer, the interpreter's exit) are not insert speed; the exit is printed
  in the note. The row count must equal the events produced. The ratio's limit is ``LOAD DATA``
  of these very rows, timed right before the first consumer (``stages.same_rows_limit``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from auditstream import mysql
from auditstream.dsn import MySQLDsn
from bench import components, corpus, quiesce, stages, topic
from bench.components import Topics
from bench.measure import Child, Figure
from bench.run import Run
from ops.verify.tables import event_tables


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
    run.add(
        Figure(
            stage,
            "CPU per event",
            1e6 * max(result.cpu_seconds - startup.cpu_seconds, 0.0) / written.count,
            "µs",
            note="the producer's user + system CPU (wait4) less that of the run on an empty log "
            "(start-up); on a shared machine it moves far less than the rate does",
        ),
        "producer.cpu_us",
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
    corpora = []
    for i in range(sizes.servers):
        written = corpus.write(
            run.path(f"corpus/server{i}"), sizes.consumer_events_per_server, seed=sizes.seed + i
        )
        total += written.count
        corpora.append(written)
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
    # The ratio's reference: LOAD DATA of these very rows, just before the first consumer.
    limit = stages.same_rows_limit(
        run, [(s.server_uuid, c.raw_events()) for s, c in zip(servers, corpora, strict=True)]
    )
    other = run.ref("limit.load.rows_s")  # the sinks stage's one-server limit, if it ran

    for members in (1, 2, 3):
        archive = run.stack.database(f"bench_consumer_{members}")
        components.consumer_setup(archive, run.path(f"logs/consumer-setup-{members}.log"))
        group = f"bench-{members}-{uuid.uuid4().hex[:8]}"
        quiesce.flush_dirty_pages(run.stack.server_dsn)  # like the limit: a clean start
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
        drain = _watch_drain(archive, topics.events, total, children, timeout=900)
        results = [c.wait(900).ok("consumer") for c in children]
        ended = max(c.started + r.seconds for c, r in zip(children, results, strict=True))
        rows = _count(archive)
        if rows != total:
            raise RuntimeError(f"{members} consumer(s) wrote {rows} rows of {total}")
        if drain.last is None:
            raise RuntimeError(f"the archived offsets never reached {total} events")
        seconds = max(drain.last - drain.first, 1e-3)
        timed = total - drain.first_rows
        clock = (
            f"first → last committed batch ({timed:,} rows in {seconds:.1f} s; then "
            f"{ended - drain.last:.1f} s to the last exit)"
        )
        if not timed:  # one batch held everything (tiny sizes): only the old clock can time it
            seconds, timed = max(ended - drain.first, 1e-3), total
            clock = "one batch: first row → last exit"
        stage = f"consumer x{members} (broker → audit_data)"
        run.add(
            Figure(
                stage,
                "rows/s",
                timed / seconds,
                "rows/s",
                baseline=run.ref("baseline.rows_s"),
                limit=limit,
                note=f"{rows:,} rows from {sizes.servers} servers (keys); {clock}; "
                f"peak RSS {max(r.peak_rss_mb for r in results):.0f} MB per process; limit: "
                "LOAD DATA of these rows" + _other_ratio(timed / seconds, other),
            ),
            f"consumer{members}.rows_s",
        )
        if members == 1:
            run.add(Figure(stage, "peak RSS", results[0].peak_rss_mb, "MB"), "consumer1.rss_mb")
            run.add(
                Figure(
                    stage,
                    "CPU per row",
                    1e6 * results[0].cpu_seconds / rows,
                    "µs",
                    note="the consumer's user + system CPU (wait4) over its whole life, start-up "
                    "and group join included; mariadbd's share is not in it",
                ),
                "consumer1.cpu_us",
            )
        if members > 1:
            run.add(
                Figure(
                    stage,
                    "rows/s per process",
                    rows / seconds / members,
                    "rows/s",
                    baseline=run.ref("baseline.rows_s"),
                    limit=limit,
                )
            )


def _other_ratio(rate: float, other: float | None) -> str:
    """The rate as a share of the sinks stage's limit (the ratio's reference before 2026-12-07)."""
    return f" ({100 * rate / other:.0f} % of the sinks stage's one-server limit)" if other else ""


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


@dataclass
class Drain:
    """When the archive first and last moved, by its committed offsets."""

    first: float = 0.0  # perf_counter when the first committed batch was seen
    first_rows: int = 0  # events archived at that moment (not timed: written before it)
    last: float | None = None  # perf_counter when every event was archived


def _watch_drain(
    dsn: MySQLDsn, topic_name: str, total: int, children: list[Child], timeout: float
) -> Drain:
    """Poll the archived offsets of ``topic_name`` every 20 ms until ``total`` events are in.

    The offsets are stored in the same transaction as the rows, so their sum is the number of
    events committed (the topic's offsets are contiguous from 0: the producer is not
    transactional). Cheap enough not to disturb the consumers (one indexed row per partition).
    Returns early, with ``last`` None, when every child exited before the total was reached.

    Raises:
        RuntimeError: nothing was archived within 120 s.
    """
    conn = mysql.connect(dsn, autocommit=True)
    drain = Drain()
    started = time.monotonic()
    try:
        cur = conn.cursor()
        while time.monotonic() - started < timeout:
            alive = any(c.alive() for c in children)  # before the query: a last look after exit
            t = time.perf_counter()
            cur.execute(
                "SELECT COALESCE(SUM(next_offset), 0) FROM audit_offsets WHERE topic = %s",
                (topic_name,),
            )
            found: Any = cur.fetchall()
            done = int(found[0][0])
            if done and not drain.first:
                drain.first, drain.first_rows = t, done
            if done >= total:
                drain.last = t
                return drain
            if not drain.first and time.monotonic() - started > 120:
                raise RuntimeError("no row reached audit_data within 120 s")
            if not alive:
                return drain
            time.sleep(0.02)
    finally:
        conn.close()
    return drain
