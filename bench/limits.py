"""The limits: what the components allow when the pipeline's own work is taken away.

- ``read_pages``: consecutive ``audit_log_read()`` pages at 4 MB over the MySQL protocol, nothing
  done with them (the producer's source limit).
- ``produce_raw``: the same event bytes produced unchanged, with the producer's transport settings
  (``acks=all``, idempotence, the same compression and linger) - no parsing, no Avro.
- ``load_data``: ``LOAD DATA LOCAL INFILE`` of the same rows the consumer writes, prepared in
  advance, into a table created from the same template (the consumer's sink limit).

Trap: each limit is timed around the component call only; preparing the input (the TSV file,
the list of byte strings) is outside the clock, or the limit would include our own overhead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Producer

import sql
from auditstream import mysql
from auditstream.dsn import MySQLDsn
from auditstream.kafka import TopicSpec, audit_topic_config, ensure_topics, producer_config
from schemas.mapping import to_record

PAGE_BYTES = 4 * 1024 * 1024
_FROM_THE_START = '{"start": {"timestamp": "2000-01-01"}}'


@dataclass
class Rate:
    """Items and bytes moved in ``seconds``."""

    items: int
    nbytes: int
    seconds: float
    page_seconds: tuple[float, ...] = ()

    @property
    def per_second(self) -> float:
        """Items per second."""
        return self.items / self.seconds if self.seconds else 0.0

    @property
    def mb_per_second(self) -> float:
        """Megabytes (10^6) per second."""
        return self.nbytes / 1e6 / self.seconds if self.seconds else 0.0


def pages(source: MySQLDsn, buffer_size: int = PAGE_BYTES) -> Iterator[tuple[bytes, float]]:
    """Every page of the log from its start, with the seconds each call took, until ``null``."""
    conn = mysql.connect(source, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute(f"SET audit_log_read_buffer_size = {int(buffer_size)}")
        arg: str | None = _FROM_THE_START
        while True:
            t0 = time.perf_counter()
            if arg is None:
                cur.execute("SELECT audit_log_read()")
            else:
                cur.execute("SELECT audit_log_read(%s)", (arg,))
            row: Any = cur.fetchone()
            cur.fetchall()
            seconds = time.perf_counter() - t0
            arg = None
            assert row is not None  # noqa: S101 - a SELECT of a function returns one row
            value = row[0]
            page = value.encode() if isinstance(value, str) else bytes(value)
            yield page, seconds
            if ends_sequence(page):
                return
    finally:
        conn.close()


def read_pages(source: MySQLDsn, buffer_size: int = PAGE_BYTES) -> Rate:
    """Read the whole log from its start in pages; time only the calls.

    Events are counted after the clock stops (parsing is the producer's work, not the source's).
    """
    got = list(pages(source, buffer_size))
    events = sum(sum(1 for e in orjson.loads(p) if e is not None) for p, _ in got)
    durations = tuple(s for _, s in got)
    return Rate(events, sum(len(p) for p, _ in got), sum(durations), durations)


def ends_sequence(page: bytes) -> bool:
    """True when the page's last element is ``null`` (the read sequence is exhausted)."""
    body = page.rstrip()
    return body.endswith(b"]") and body[:-1].rstrip().endswith(b"null")


def produce_raw(bootstrap: str, topic: str, key: bytes, events: Sequence[bytes]) -> Rate:
    """Produce ``events`` unchanged, keyed by ``key``, and wait for every acknowledgement.

    Raises:
        RuntimeError: a message was not acknowledged (a limit with losses is no limit).
    """
    ensure_topics({"bootstrap.servers": bootstrap}, [TopicSpec(topic, 6, -1, audit_topic_config())])
    producer = Producer(producer_config(bootstrap, {}))
    failures: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    t0 = time.perf_counter()
    for value in events:
        _produce(producer, topic, value, key, on_delivery)
        producer.poll(0)
    remaining = producer.flush(120)
    seconds = time.perf_counter() - t0
    if remaining or failures:
        raise RuntimeError(f"raw produce lost {remaining} messages; errors: {failures[:3]}")
    return Rate(len(events), sum(map(len, events)), seconds)


def read_and_produce(
    source: MySQLDsn, bootstrap: str, topic: str, key: bytes, buffer_size: int = PAGE_BYTES
) -> Rate:
    """The producer's limit: the same pages read and each event's bytes produced unchanged.

    Events are cut out of the page at the separators (the page layout is the file's: one event
    per line), so no JSON is parsed and nothing is encoded.
    """
    ensure_topics({"bootstrap.servers": bootstrap}, [TopicSpec(topic, 6, -1, audit_topic_config())])
    producer = Producer(producer_config(bootstrap, {}))
    failures: list[str] = []
    events = nbytes = 0

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    t0 = time.perf_counter()
    for page, _ in pages(source, buffer_size):
        nbytes += len(page)
        for line in page.splitlines():
            body = line.rstrip().removesuffix(b",")
            if not body.startswith(b"{"):
                continue
            _produce(producer, topic, body, key, on_delivery)
            events += 1
        producer.poll(0)
    remaining = producer.flush(120)
    seconds = time.perf_counter() - t0
    if remaining or failures:
        raise RuntimeError(f"raw produce lost {remaining} messages; errors: {failures[:3]}")
    return Rate(events, nbytes, seconds)


def _produce(
    producer: Producer, topic: str, value: bytes, key: bytes, on_delivery: Callable[..., None]
) -> None:
    while True:
        try:
            producer.produce(topic, value, key, on_delivery=on_delivery)
        except BufferError:
            producer.poll(0.05)
        else:
            return


def to_tsv(server_uuid: str, raw_events: Sequence[bytes], columns: Sequence[str]) -> bytes:
    """The rows the consumer would write for ``raw_events``, as ``LOAD DATA``'s default TSV."""
    out = []
    for raw in raw_events:
        text = raw.decode()
        record = to_record(server_uuid, text, orjson.loads(raw))
        record["ts"] = record.pop("timestamp")
        out.append("\t".join(_tsv_field(record.get(c)) for c in columns))
    return ("\n".join(out) + "\n").encode()


def interleave(servers: Sequence[Sequence[bytes]], rows_per_transaction: int) -> list[bytes]:
    """Transactions of TSV lines taking an equal share of each server's lines in turn.

    The shape of a consumer's batches when it drains several servers' partitions at once: each
    batch holds a run of every server's events, each run in that server's order, so InnoDB
    inserts at as many places of the primary key ``(server_uuid, ts, id)`` as there are
    servers (one server's rows only ever append, ~7 % faster measured here).
    """
    share = max(1, rows_per_transaction // max(1, len(servers)))
    longest = max((len(lines) for lines in servers), default=0)
    return [
        b"".join(b"".join(lines[start : start + share]) for lines in servers)
        for start in range(0, longest, share)
    ]


def _tsv_field(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dict | list):
        value = orjson.dumps(value).decode()
    text = str(value)
    return (
        text.replace("\\", "\\\\")
        .replace("\t", "\\t")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\0", "\\0")
    )


def create_audit_data(archive: MySQLDsn, table: str = "audit_data") -> list[str]:
    """Create ``audit_data_template`` and ``table`` LIKE it; return the columns in table order."""
    conn = mysql.connect(archive, autocommit=True)
    try:
        cur = conn.cursor()
        for stmt in sql.statements("archive/audit_data_template"):
            cur.execute(stmt)
        cur.execute(f"CREATE TABLE IF NOT EXISTS `{table}` LIKE audit_data_template")
        cur.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE()"
            " AND table_name = 'audit_data_template' ORDER BY ordinal_position"
        )
        return [str(name) for (name,) in cur.fetchall()]
    finally:
        conn.close()


def load_data(archive: MySQLDsn, files: Sequence[Path], rows: int, columns: Sequence[str]) -> Rate:
    """``LOAD DATA LOCAL INFILE`` every file (one transaction each) into ``audit_data``."""
    conn = mysql.connect(
        archive,
        allow_local_infile=True,
        allow_local_infile_in_path=str(files[0].parent),
        autocommit=False,
    )
    nbytes = sum(f.stat().st_size for f in files)
    try:
        cur = conn.cursor()
        t0 = time.perf_counter()
        for path in files:
            cur.execute(
                f"LOAD DATA LOCAL INFILE %s INTO TABLE audit_data ({', '.join(columns)})",
                (str(path),),
            )
            conn.commit()
        seconds = time.perf_counter() - t0
        cur.execute("SELECT count(*) FROM audit_data")
        found: Any = cur.fetchone()
        count = int(found[0]) if found else 0
    finally:
        conn.close()
    if count != rows:
        raise RuntimeError(f"LOAD DATA loaded {count} rows, expected {rows}")
    return Rate(rows, nbytes, seconds)
