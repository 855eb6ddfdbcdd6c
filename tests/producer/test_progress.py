"""The backlog bar: drawn in event time while the producer catches up, gone once it has."""

from __future__ import annotations

import io
import re
import time
from datetime import UTC, datetime

from rich.console import Console

from producer.page import Position
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
