"""The reference stages: the corpus, the limits, and the predecessor's baseline.

They run first: every pipeline figure is later printed with its ratio to these.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

from bench import baseline, corpus, limits, quiesce
from bench.measure import Figure, Stopwatch, percentile
from bench.run import Run
from consumer.config import ConsumerSettings


def write_corpus(run: Run) -> None:
    """Write the run's corpus with the emulator's generator and serve it from one emulator."""
    with Stopwatch() as sw:
        written = corpus.write(
            run.path("corpus/main"), run.sizes.corpus_events, seed=run.sizes.seed
        )
    run.corpus = written
    run.add(
        Figure(
            "corpus (traffic generator)",
            "events/s written",
            written.count / sw.seconds,
            "events/s",
            note=f"{written.count:,} events, {written.nbytes / 1e6:.0f} MB, "
            f"{written.nbytes / written.count:.0f} B/event, seed {run.sizes.seed}",
        )
    )
    run.source = run.stack.emulator(written.log_dir)


def source_limits(run: Run) -> None:
    """``audit_log_read`` pages alone, then the same pages with every event produced raw."""
    written, source = run.need_source()
    read = limits.read_pages(source.dsn)
    if read.items != written.count:
        raise RuntimeError(f"read {read.items} events of {written.count}")
    stage = "limit: audit_log_read pages"
    note = f"{len(read.page_seconds)} pages of 4 MB over the MySQL protocol"
    run.add(Figure(stage, "events/s", read.per_second, "ev/s", note=note), "limit.read.ev_s")
    run.add(Figure(stage, "MB/s", read.mb_per_second, "MB/s"), "limit.read.mb_s")
    run.refs["limit.read.pages"] = len(read.page_seconds)
    ms = [s * 1000 for s in read.page_seconds]
    run.add(
        Figure(
            stage, "page latency p50 / max", percentile(ms, 50), "ms", note=f"max {max(ms):.0f} ms"
        ),
        "limit.read.page_ms",
    )
    both = limits.read_and_produce(source.dsn, run.stack.bootstrap, _topic("raw"), _key(run))
    stage = "limit: pages read + raw produce"
    note = "same pages, each event's bytes produced unchanged (acks=all, idempotent, zstd)"
    run.add(Figure(stage, "events/s", both.per_second, "ev/s", note=note), "limit.producer.ev_s")
    run.add(Figure(stage, "MB/s", both.mb_per_second, "MB/s"), "limit.producer.mb_s")


def sink_limits(run: Run) -> None:
    """Raw produce of the corpus bytes (no source), and ``LOAD DATA`` of the same rows."""
    written, _ = run.need_source()
    events = written.raw_events()
    raw = limits.produce_raw(run.stack.bootstrap, _topic("raw-only"), _key(run), events)
    stage = "limit: raw produce"
    note = f"{raw.items:,} events from memory, acks=all, idempotent"
    run.add(Figure(stage, "events/s", raw.per_second, "ev/s", note=note), "limit.produce.ev_s")
    run.add(Figure(stage, "MB/s", raw.mb_per_second, "MB/s"), "limit.produce.mb_s")

    # As many rows as each consumer run writes, into an equally fresh table: InnoDB slows down
    # as the table outgrows the buffer pool, so a bigger load would be an unfair limit.
    rows = events[: run.sizes.servers * run.sizes.consumer_events_per_server]
    # The same transactions as the consumer's: its default --batch-rows (one LOAD DATA statement
    # and one commit per batch). The 5,000-row transactions this limit used before (when that
    # was the consumer's default) are loaded too, into their own fresh table, and printed beside
    # it: the cost of the consumer's smaller batches is then visible, not hidden in the ratio.
    # The limit is the better of two loads: one load swung from 12k to 29k rows/s between runs
    # on this shared machine, and a limit is what the component allows (the higher, the less
    # the ratio flatters the consumer).
    chunk = ConsumerSettings.model_fields["batch_rows"].default
    stage = "limit: LOAD DATA"
    loads = [_load_rows(run, rows, chunk, f"bench_limit_load{n}") for n in (1, 2)]
    load = max(loads, key=lambda r: r.per_second)
    note = (
        f"{load.items:,} rows (as many as a consumer run) prepared in advance, {chunk:,} per "
        "transaction like the consumer's batches (its --batch-rows default), fresh table from "
        "the audit_data template; the better of 2 loads ("
        + ", ".join(f"{r.per_second:,.0f}" for r in loads)
        + ")"
    )
    run.add(Figure(stage, "rows/s", load.per_second, "rows/s", note=note), "limit.load.rows_s")
    run.add(Figure(stage, "MB/s", load.mb_per_second, "MB/s", note="TSV bytes"), "limit.load.mb_s")
    if chunk != _OLD_CHUNK:
        big = _load_rows(run, rows, _OLD_CHUNK, "bench_limit_load_big")
        run.add(
            Figure(
                stage,
                f"rows/s, {_OLD_CHUNK:,}-row transactions",
                big.per_second,
                "rows/s",
                note="the same rows in bigger transactions (this limit's shape before "
                "2026-12-07 session 3); not the ratio's reference",
            ),
            "limit.load_big.rows_s",
        )


_OLD_CHUNK = 5_000


def same_rows_limit(run: Run, servers: Sequence[tuple[str, Sequence[bytes]]]) -> float:
    """``LOAD DATA`` of the consumer stage's own rows, timed right before its first consumer.

    The ratio's reference: the rows the consumer will write (``servers``: each emulated server's
    uuid and raw events), in transactions of the consumer's default batch size that each hold
    an equal run of every server's rows (``limits.interleave``), into a fresh database, the
    better of two loads. The sinks stage's limit loads other rows (the run's corpus, all under
    one server uuid, so InnoDB only appends); it stays printed beside this one.
    Returns the rate (rows/s).
    """
    chunk = ConsumerSettings.model_fields["batch_rows"].default
    columns = _columns(run)
    lines = [limits.to_tsv(server, raws, columns).splitlines(keepends=True)
             for server, raws in servers]  # fmt: skip
    blobs = limits.interleave(lines, chunk)
    loads = [_load_files(run, blobs, f"bench_limit_same{n}") for n in (1, 2)]
    load = max(loads, key=lambda r: r.per_second)
    note = (
        f"the consumer stage's {load.items:,} rows from {len(servers)} servers, timed just before "
        f"consumer x1; {chunk:,} per transaction, each an equal run of every server's rows; "
        "fresh table; the better of 2 loads ("
        + ", ".join(f"{r.per_second:,.0f}" for r in loads)
        + ")"
    )
    run.add(
        Figure("limit: LOAD DATA", "rows/s, the consumer stage's rows", load.per_second, "rows/s",
               note=note),
        "limit.load_same.rows_s",
    )  # fmt: skip
    return load.per_second


def _load_rows(run: Run, rows: list[bytes], chunk: int, database: str) -> limits.Rate:
    """``LOAD DATA`` of ``rows`` in ``chunk``-row transactions into a fresh database's table."""
    columns, server = _columns(run), _uuid(run)
    blobs = [limits.to_tsv(server, rows[start : start + chunk], columns)
             for start in range(0, len(rows), chunk)]  # fmt: skip
    return _load_files(run, blobs, database)


def _columns(run: Run) -> list[str]:
    """audit_data's columns in table order (what a TSV file lists)."""
    return limits.create_audit_data(run.stack.database("bench_limit_columns"))


def _load_files(run: Run, blobs: Sequence[bytes], database: str) -> limits.Rate:
    """One ``LOAD DATA`` file and transaction per blob, into a fresh database's table."""
    archive = run.stack.database(database)
    columns = limits.create_audit_data(archive)
    files = []
    for n, blob in enumerate(blobs):
        path = run.path(f"{database}/rows-{n:04d}.tsv")
        path.write_bytes(blob)
        files.append(path)
    quiesce.flush_dirty_pages(run.stack.server_dsn)
    return limits.load_data(archive, files, sum(blob.count(b"\n") for blob in blobs), columns)


def predecessor(run: Run) -> None:
    """The predecessor's algorithm on its own corpus (same generator and seed, fewer events)."""
    written = corpus.write(
        run.path("corpus/baseline"), run.sizes.baseline_events, seed=run.sizes.seed
    )
    server = run.stack.emulator(written.log_dir)
    archive = run.stack.database("bench_baseline")
    baseline.setup(archive)
    # The bookmark the predecessor would have stored after archiving the first event.
    baseline.store_bookmark(archive, server.server_uuid, *written.first)
    result = baseline.run(server.dsn, archive, clock=time.perf_counter)
    run.stack.stop_emulator(server)
    expected = written.count - 1
    if result.rows != expected:
        raise RuntimeError(f"baseline archived {result.rows} rows, expected {expected}")
    stage = "baseline (predecessor)"
    note = (
        f"{result.rows:,} rows, {result.pages} pages, stopped by {result.stopped_by}; "
        f"{100 * result.read_seconds / result.seconds:.0f} % of the time in audit_log_read"
    )
    rows_s = result.rows / result.seconds
    run.add(
        Figure(stage, "rows/s source → audit_data", rows_s, "rows/s", note=note), "baseline.rows_s"
    )
    run.add(
        Figure(stage, "MB/s", result.page_bytes / 1e6 / result.seconds, "MB/s"), "baseline.mb_s"
    )


def _uuid(run: Run) -> str:
    return run.source.server_uuid if run.source is not None else "bench-server"


def _key(run: Run) -> bytes:
    return _uuid(run).encode()


def _topic(name: str) -> str:
    return f"bench.{name}.{uuid.uuid4().hex[:8]}"
