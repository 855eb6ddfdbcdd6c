"""Realistic audit traffic: sessions of many accounts from many hosts, reproducible by seed.

``generate_events(count, seed)`` yields event dicts (``timestamp`` set, no ``id``: the writer
numbers them per its flavor). ``write_events(writer, count, seed)`` writes them fast through
pre-formatted lines (the 100k events/s path for corpora and benchmarks).

The mix: server ``startup`` first; then sessions (``connect`` → statements → ``disconnect``)
interleaved across connections; each statement is ``general/status`` preceded by
``table_access`` events for DML; failed logins, ``message`` events and a rare
``shutdown``/``startup`` pair. Queries carry unicode, ``<secret>`` masking, occasional errors
(1064, 1146, 1062), ``query_statistics``, long texts and — with ``oversized_share`` — events
larger than 4 MB.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from emulator.eventtext import format_pretty
from emulator.logfile import AuditLogWriter, format_event
from emulator.mix import (
    HOSTS,
    OVERSIZED_BYTES,
    TABLES,
    USERS,
    WORDS,
    Conn,
    event,
    startup,
    statement,
)


def generate_events(
    count: int,
    seed: int = 0,
    *,
    oversized_share: float = 0.0,
    start: datetime | None = None,
    events_per_second: float = 1000.0,
    with_startup: bool = True,
) -> Iterator[dict[str, Any]]:
    """Yield ``count`` events with increasing ``timestamp`` (UTC) and no ``id``.

    Args:
        count: how many events.
        seed: the same seed gives the same events.
        oversized_share: fraction of statements whose event exceeds 4 MB (0..1).
        start: timestamp of the first event (default 2024-01-01 00:00:00 UTC).
        events_per_second: spacing of the timestamps (not a wall-clock rate).
        with_startup: begin with the server's ``audit/startup`` event.
    """
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not security
    t0 = start or datetime(2024, 1, 1, tzinfo=UTC)
    step = 1.0 / events_per_second
    conns: list[Conn] = []
    next_cid = 10
    n = 0

    def stamp() -> str:
        return (t0 + timedelta(seconds=int(n * step))).strftime("%Y-%m-%d %H:%M:%S")

    if count > 0 and with_startup:
        yield startup(stamp())
        n += 1
    while n < count:
        ts = stamp()
        r = rng.random()
        if not conns or (r < 0.08 and len(conns) < 40):
            user, host = rng.choice(USERS), rng.choice(HOSTS)
            attrs = {
                "_pid": str(rng.randint(100, 99999)),
                "_platform": "x86_64",
                "_os": "Linux",
                "_client_name": "libmysql",
                "_client_version": "8.0.40",
                "program_name": "app",
            }
            status = 1045 if rng.random() < 0.03 else 0
            conn = Conn(next_cid, user, host, rng.choice(TABLES)[0], rng.randint(1, 30), attrs)
            next_cid += 1
            yield event(
                ts,
                "connection",
                "connect",
                conn,
                connection_data={
                    "connection_type": rng.choice(["tcp/ip", "ssl"]),
                    "status": status,
                    "db": conn.db,
                    "connection_attributes": attrs,
                },
            )
            n += 1
            if status == 0:
                conns.append(conn)
            continue
        conn = rng.choice(conns)
        if conn.left <= 0:
            conns.remove(conn)
            yield event(
                ts, "connection", "disconnect", conn, connection_data={"connection_type": "tcp/ip"}
            )
            n += 1
            continue
        if r > 0.995:
            yield event(
                ts,
                "message",
                "user",
                conn,
                message_data={
                    "component": "app",
                    "producer": conn.user,
                    "message": f"checkpoint {n} {rng.choice(WORDS)}",
                    "map": {"n": n, "ok": True},
                },
            )
            n += 1
            continue
        conn.left -= 1
        big = OVERSIZED_BYTES + rng.randint(0, 1024) if rng.random() < oversized_share else 0
        cmd, query, access = statement(rng, conn, big)
        for db, table, access_event in access:
            if n >= count:
                break
            yield event(
                ts,
                "table_access",
                access_event,
                conn,
                table_access_data={"db": db, "table": table, "query": query, "sql_command": cmd},
            )
            n += 1
        if n >= count:
            break
        status = rng.choice([0] * 30 + [1064, 1146, 1062])
        ev = event(
            ts,
            "general",
            "status",
            conn,
            general_data={"command": "Query", "sql_command": cmd, "query": query, "status": status},
        )
        if rng.random() < 0.5:
            ev["query_statistics"] = {
                "query_time": round(rng.random() / 10, 6),
                "rows_sent": rng.randint(0, 500),
                "rows_examined": rng.randint(0, 5000),
                "bytes_received": len(query),
                "bytes_sent": rng.randint(0, 10**5),
            }
        yield ev
        n += 1


def write_events(
    writer: AuditLogWriter,
    count: int,
    seed: int = 0,
    *,
    oversized_share: float = 0.0,
    start: datetime | None = None,
    compact: bool | None = None,
    events_per_second: float = 1000.0,
    with_startup: bool = True,
) -> int:
    """Write ``count`` generated events through ``writer`` in bulk; returns how many.

    The fast path (≥100k events/s): a pool of sessions is generated once from ``seed`` and
    replayed with fresh connection ids, timestamps and ids, stamped into pre-formatted bytes.
    ``compact=True`` serialises the pool with orjson (``{"class":...}``) instead of the plugin's
    spacing; by default it follows the writer (compact for a JSONL log; a ``pretty`` writer gets
    each event re-laid over several lines). Deterministic for a given seed and count.
    """
    if compact is None:
        compact = writer.layout == "jsonl"
    pool_size = min(count, 1000 if oversized_share else 5000)
    pool = [
        _template(ev, compact)
        for ev in generate_events(
            pool_size, seed, oversized_share=oversized_share, with_startup=with_startup
        )
    ]
    t0 = start or datetime(2024, 1, 1, tzinfo=UTC)
    percona = writer.flavor == "percona"
    last = writer.last
    sep = b"," if compact else b", "

    def lines() -> Iterator[tuple[bytes, str, int]]:
        nonlocal last
        current, ts, stamp = -1, "", b""
        ident = -1 if last is None else last[1]
        size = len(pool)
        for n in range(count):
            cycle, k = divmod(n, size)
            head, cid, tail = pool[k]
            second = int(n / events_per_second)
            if second != current:
                current = second
                ts = (t0 + timedelta(seconds=second)).strftime("%Y-%m-%d %H:%M:%S")
                stamp = (
                    b'{"timestamp":"%s","id":' if compact else b'{ "timestamp": "%s", "id": '
                ) % ts.encode()
                if not percona and (last is None or last[0] != ts):
                    ident = -1
            ident += 1
            last = (ts, ident)
            cid_text = b"%d" % (cid + cycle * 100_000) if cid else b"0"
            yield stamp + b"%d" % ident + sep + head + cid_text + tail, ts, ident

    if writer.layout == "pretty":  # Percona's JSON: the same events over several lines
        return writer.write_raw_lines(
            (format_pretty(orjson.loads(raw)), ts, ident) for raw, ts, ident in lines()
        )
    return writer.write_raw_lines(lines())


def _template(event: dict[str, Any], compact: bool) -> tuple[bytes, int, bytes]:
    """Split an event's bytes around its ``connection_id`` value: (before, cid, after)."""
    body = {k: v for k, v in event.items() if k not in ("timestamp", "id")}
    cid = int(body.get("connection_id", 0))
    body["connection_id"] = cid
    raw = orjson.dumps(body) if compact else format_event(body)
    key = b'"connection_id":%d' % cid if compact else b'"connection_id": %d' % cid
    before, _, after = raw.partition(key)
    prefix = 1 if compact else 2  # drop "{" or "{ " : the stamp brings its own
    return before[prefix:] + key[: -len(b"%d" % cid)], cid, after
