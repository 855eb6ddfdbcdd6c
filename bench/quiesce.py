"""Start every timed load from the same database state: InnoDB's dirty pages flushed.

Why: the limit's ``LOAD DATA`` and each consumer run write ~250 MB into a 512 MB buffer pool
with a 256 MB redo log (``auditstream.embedded``). Whatever runs next meets the previous
load's dirty pages being flushed (checkpoint-driven, furious flushing once the redo log is
full) and is slowed by that work, not by its own: in one run the second of two identical
limit loads printed 9.9k rows/s against 24.5k for the first. So before each timed load the
benchmark asks the page cleaner to flush everything and waits until it has. This is applied
to the limit and to every consumer run alike; it flatters neither (each still pays for its
own flushing while it runs).

The state each load then starts from is logged (buffer pool pages holding data and free, the
undo history length): it is not the same for all of them. The limit's first load finds the pool
nearly empty; a consumer run finds it almost full of the earlier loads' tables (clean pages,
which InnoDB evicts as it needs room). Whether that costs the consumer anything is not
measured; in both stage orders of session 5 the x1 consumer met the same state (BENCHMARKS.md,
"Issue 14, consumer stage order"), so it did not explain a difference between them.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from auditstream import mysql
from auditstream.dsn import MySQLDsn

log = logging.getLogger(__name__)

#: Dirty pages (16 KiB each) regarded as "flushed": the page cleaner's background trickle.
FLOOR_PAGES = 256


def flush_dirty_pages(server: MySQLDsn, timeout: float = 90.0) -> float:
    """Flush InnoDB's dirty pages (up to ``timeout`` s); return the seconds it took.

    Sets ``innodb_max_dirty_pages_pct`` to 0 while waiting and puts the old value back.
    """
    conn = mysql.connect(server, autocommit=True)
    started = time.monotonic()
    try:
        cur = conn.cursor()
        cur.execute(
            "SELECT @@GLOBAL.innodb_max_dirty_pages_pct, @@GLOBAL.innodb_io_capacity, "
            "@@GLOBAL.innodb_io_capacity_max"
        )
        before: Any = cur.fetchall()[0]
        # The page cleaner paces itself by io_capacity (200 pages/s by default: 80 s for one
        # load's pages); nothing else runs now, so let it go at the disk's speed.
        cur.execute("SET GLOBAL innodb_io_capacity_max = 100000")
        cur.execute("SET GLOBAL innodb_io_capacity = 100000")
        cur.execute("SET GLOBAL innodb_max_dirty_pages_pct = 0")
        try:
            while True:
                cur.execute("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'")
                status: Any = cur.fetchall()
                dirty = int(status[0][1])
                waited = time.monotonic() - started
                if dirty <= FLOOR_PAGES:
                    break
                if waited > timeout:
                    log.warning("still %d dirty InnoDB pages after %.0f s", dirty, waited)
                    break
                time.sleep(0.2)
        finally:
            cur.execute(f"SET GLOBAL innodb_max_dirty_pages_pct = {float(before[0])}")
            cur.execute(f"SET GLOBAL innodb_io_capacity = {int(before[1])}")
            cur.execute(f"SET GLOBAL innodb_io_capacity_max = {int(before[2])}")
        state = _state(cur)
    finally:
        conn.close()
    seconds = time.monotonic() - started
    log.info(
        "InnoDB dirty pages flushed in %.1f s; buffer pool: %s data, %s free of %s pages; "
        "history list length %s",
        seconds,
        *(state.get(k, "?") for k in _STATE),
    )
    return seconds


#: What ``flush_dirty_pages`` logs of the state a timed load starts from.
_STATE = (
    "Innodb_buffer_pool_pages_data",
    "Innodb_buffer_pool_pages_free",
    "Innodb_buffer_pool_pages_total",
    "Innodb_history_list_length",
)


def _state(cur: Any) -> dict[str, str]:
    cur.execute("SHOW GLOBAL STATUS LIKE 'Innodb_%'")
    rows: Any = cur.fetchall()
    return {str(name): str(value) for name, value in rows if name in _STATE}
