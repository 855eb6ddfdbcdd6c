"""The backlog bar: drawn in event time while the producer catches up, gone once it has."""

from __future__ import annotations

import io
import re
import time
from datetime import UTC, datetime

from rich.console import Console

from auditstream.position import Position
from producer.progress import BacklogBar

NEWEST = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)


def test_bar_shows_the_event_time_backlog_shrinking_to_zero() -> None:
    out = io.StringIO()
    positions = iter(
        ["2026-11-01 10:00:00", "2026-11-01 11:00:00", "2026-11-01 11:59:00"]
        + ["2026-11-01 12:00:00"] * 50
    )
    current = {"pos": Position("2026-11-01 10:00:00", 0)}

    def bookmark() -> Position:
        return current["pos"]

    bar = BacklogBar(
        bookmark,
        lambda: NEWEST,
        refresh=0.1,
        console=Console(file=out, force_terminal=True, width=120),
    )
    bar.start()
    for ts in positions:
        current["pos"] = Position(ts, 0)
        time.sleep(0.3)
        if ts.endswith("12:00:00"):
            break
    bar.stop()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())  # the terminal's colours
    assert "100.0%" in text
    assert "behind 2.0 h of audit events" in text
    assert "behind 1.0 h of audit events" in text or "behind 1.0 min of audit events" in text


def test_no_bar_when_not_behind_enough() -> None:
    out = io.StringIO()
    bar = BacklogBar(
        lambda: Position("2026-11-01 11:59:30", 0),
        lambda: NEWEST,
        console=Console(file=out, force_terminal=True, width=120),
    )
    bar.start()
    time.sleep(0.5)
    bar.stop()
    assert "behind" not in out.getvalue()


def test_a_producer_in_a_terminal_draws_the_bar_while_it_drains_a_backlog(
    emulator, mysql_server, bootstrap: str, unique_name
) -> None:
    """Through a real pseudo-terminal: the bar appears on the producer's stderr."""
    import os
    import pty
    import subprocess
    import sys
    from datetime import timedelta

    from emulator.traffic import write_events
    from producer.bookmark import BookmarkStore

    BookmarkStore(mysql_server.dsn).setup()
    start = datetime(2026, 1, 1, tzinfo=UTC)  # two bursts two hours apart: a backlog in time
    write_events(emulator.writer, 10_000, seed=3, start=start - timedelta(hours=3), compact=True)
    write_events(emulator.writer, 10_000, seed=4, start=start - timedelta(hours=1), compact=True)
    emulator.writer.flush()
    password = emulator.archiver_dsn.password
    assert password is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITSTREAM_")}
    env["AUDITSTREAM_SOURCE_PASSWORD"] = password.get_secret_value()
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "producer", "--source-dsn", f"mysql://archiver@127.0.0.1:{emulator.port}",
         "--bootstrap-servers", bootstrap, "--topic", unique_name("ev"), "--control-topic", unique_name("ctl"),
         "--start-from", "earliest", "--read-buffer-size", "65536", "--batch-events", "200", "--once"],
        env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
    )  # fmt: skip
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the terminal closed: the producer exited
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(120) == 0
    os.close(master)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode(errors="replace"))
    assert "of audit events" in text and "behind" in text, text[-2000:]
