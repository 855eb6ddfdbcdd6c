"""A progress bar for a producer that starts far behind, in a terminal only.

``audit_log_read`` gives no event count, so progress is measured in event time: from the
bookmark at start to the newest event written (``audit_log_read_bookmark()``), with rich's ETA.
The newest event is asked for on a session of its own every ``refresh`` seconds, never on the
reading session (which belongs to the read sequence).

Trap: the bar only reads ``loop.bookmark`` (a plain attribute the loop replaces after each stored
batch); it must never slow the loop or touch its connections.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from datetime import datetime

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from auditstream import mysql
from auditstream.dsn import MySQLDsn
from auditstream.position import Position
from schemas.mapping import parse_timestamp


def newest_event(dsn: MySQLDsn) -> datetime | None:
    """The time of the newest event written on the audited server, or None."""
    conn = mysql.connect(dsn, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute("SELECT audit_log_read_bookmark()")
        row = mysql.fetchone(cur)
    finally:
        conn.close()
    if not row or row[0] is None:
        return None
    text = row[0].decode() if isinstance(row[0], bytes | bytearray) else str(row[0])
    return parse_timestamp(json.loads(text)["timestamp"])


class BacklogBar:
    """Show how far behind the producer is until it has caught up (then it disappears)."""

    def __init__(
        self,
        bookmark: Callable[[], Position | None],
        newest: Callable[[], datetime | None],
        *,
        refresh: float = 10.0,
        min_backlog: float = 60.0,
        console: Console | None = None,
    ) -> None:
        self._bookmark = bookmark
        self._newest = newest
        self._refresh = refresh
        self._min_backlog = min_backlog
        self._console = console
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="backlog-bar", daemon=True)

    def start(self) -> None:
        """Start drawing in a daemon thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop drawing."""
        self._stop.set()
        self._thread.join(2.0)

    def _run(self) -> None:
        try:
            newest = self._newest()
        except mysql.Error:
            return
        start = self._position()
        while start is None and not self._stop.wait(0.2):  # the loop loads its bookmark first
            start = self._position()
        if newest is None or start is None or (newest - start).total_seconds() < self._min_backlog:
            return  # not behind enough to be worth a bar
        total = (newest - start).total_seconds()
        columns = (
            TextColumn("[bold]behind[/] {task.fields[lag]} of audit events"),
            BarColumn(),
            TextColumn("{task.percentage:>5.1f}%"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, transient=True, console=self._console) as bar:
            task = bar.add_task("backlog", total=total, lag=_human(total))
            asked = time.monotonic()
            while not self._stop.wait(0.5):
                now = self._position()
                if time.monotonic() - asked >= self._refresh:
                    asked = time.monotonic()
                    with contextlib.suppress(mysql.Error):  # keep the last known newest
                        newest = self._newest() or newest
                if now is None:
                    continue
                lag = max(0.0, (newest - now).total_seconds())
                total = max(total, (newest - start).total_seconds())
                bar.update(task, total=total, completed=total - lag, lag=_human(lag))
                if lag == 0:
                    return

    def _position(self) -> datetime | None:
        position = self._bookmark()
        return parse_timestamp(position.ts) if position is not None else None


def _human(seconds: float) -> str:
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"
