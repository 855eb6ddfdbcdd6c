"""When archived rows become visible: the end-to-end stage's poller.

Trap: "newest key" stands for "every key up to it" only because one server's rows are
committed in key order (one partition, one member, one transaction per batch, in offset
order; the live log's keys grow in write order). A row committed after a newer one would get
too early a stamp; a missing row fails the step's count. Until session 4 the poller fetched
every new row (at 10k events/s: 10k rows/s through the connector into the benchmark, and a
mariadbd connection thread at 0.03-0.04 cores), work no deployment does, on the same 2 cores
as the pipeline (BENCHMARKS.md, "Issue 14, end to end (session 4)").
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from auditstream import mysql
from auditstream.dsn import MySQLDsn

#: How often the poller reads the newest key (s); a latency is at most this pessimistic.
POLL_SECONDS = 0.05

Key = tuple[str, int]


def arrivals(keys: Sequence[Key], marks: Sequence[tuple[Key, float]]) -> list[float | None]:
    """When each of ``keys`` (in key order) was first seen: the stamp of the first mark >= it.

    ``marks`` are the poller's ``(newest key, poll start)`` in poll order (keys non-decreasing);
    a key above every mark has not arrived (None).
    """
    out: list[float | None] = []
    m = 0
    for key in keys:
        while m < len(marks) and marks[m][0] < key:
            m += 1
        out.append(marks[m][1] if m < len(marks) else None)
    return out


class Poller(threading.Thread):
    """Reads one server's newest archived key every 50 ms and records when it moved."""

    def __init__(self, archive: MySQLDsn, server_uuid: str) -> None:
        super().__init__(daemon=True)
        self.archive, self.server_uuid = archive, server_uuid
        #: (newest key, start of the first poll that saw it), in poll order
        self.marks: list[tuple[Key, float]] = []
        self.stop_event = threading.Event()
        self.error: BaseException | None = None

    def newest(self) -> Key | None:
        """The newest key seen so far (None before the first row)."""
        marks = self.marks
        return marks[-1][0] if marks else None

    def seen(self, key: Key) -> bool:
        """Whether ``key`` (or a newer one) has been archived."""
        newest = self.newest()
        return newest is not None and newest >= key

    def run(self) -> None:
        """Poll until stopped."""
        try:
            conn = mysql.connect(self.archive, autocommit=True)
            cur = conn.cursor()
            while not self.stop_event.is_set():
                started = time.perf_counter()
                cur.execute(
                    "SELECT ts, id FROM audit_data WHERE server_uuid = %s "
                    "ORDER BY ts DESC, id DESC LIMIT 1",
                    (self.server_uuid,),
                )
                rows: list[Any] = cur.fetchall()
                if rows:
                    key = (rows[0][0].strftime("%Y-%m-%d %H:%M:%S"), int(rows[0][1]))
                    newest = self.newest()
                    if newest is None or key > newest:
                        self.marks.append((key, started))
                time.sleep(max(0.0, POLL_SECONDS - (time.perf_counter() - started)))
            conn.close()
        except BaseException as exc:  # noqa: BLE001 - reported by the stage
            self.error = exc

    def count(self, first: Key, last: Key) -> int:
        """Rows of this server with ``first <= (ts, id) <= last`` (its own connection)."""
        conn = mysql.connect(self.archive, autocommit=True)
        try:
            cur = conn.cursor()
            cur.execute(
                "SELECT COUNT(*) FROM audit_data WHERE server_uuid = %s "
                "AND (ts > %s OR (ts = %s AND id >= %s)) AND (ts < %s OR (ts = %s AND id <= %s))",
                (self.server_uuid, first[0], first[0], first[1], last[0], last[0], last[1]),
            )
            rows: list[Any] = cur.fetchall()
            return int(rows[0][0])
        finally:
            conn.close()
