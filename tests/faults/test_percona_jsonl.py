"""A Percona 9.x source with default settings (JSONL), end to end into the archive.

The text archived for each event must be exactly what ``audit_log_read()`` carried: Percona's
reader re-encodes events (``emulator.perconatext``), so the expectation is computed from the
files with that rule and, independently, read back from the source through SQL. Also: a log
whose format changed from JSON to JSONL under a new file name (Percona's advice) is drained
across the change with nothing lost or doubled.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from auditstream import mysql
from emulator import perconatext
from ops.verify.tables import event_tables
from producer.page import split
from tests.faults.pipeline import START, Pipeline

TRAPS = [
    "SELECT '},\n{' AS x",  # a page separator inside a string
    "SELECT \"a/b\", '\\\\'\n  FROM t -- ünïcode\t",
    "",
]


def file_events(log_dir: Path) -> list[Any]:
    """Every event of the audit_filter.* files (rotated ones by name, then the live one), read
    as JSON whatever their layout (pretty-printed JSON or compact JSONL)."""
    names = sorted(p for p in log_dir.iterdir() if p.name.startswith("audit_filter."))
    rotated = [p for p in names if p.name.count(".") > 1]
    live = [p for p in names if p.name.count(".") == 1]
    events: list[Any] = []
    for path in rotated + live:
        text = path.read_text().rstrip().removesuffix("]").rstrip().removesuffix(",")
        events += json.loads(text + "]")
    return events


def source_raws(pipe: Pipeline) -> list[str]:
    """What the source's audit_log_read() carries, page by page, cut by the producer's cutter."""
    conn = mysql.connect(pipe.emu.archiver_dsn, autocommit=True)
    try:
        cur = conn.cursor()
        arg: str | None = json.dumps({"start": {"timestamp": "1970-01-01 00:00:00"}})
        raws: list[str] = []
        while True:
            cur.execute(
                "SELECT audit_log_read(%s)" if arg else "SELECT audit_log_read()",
                ((arg,) if arg else ()),
            )
            page = split(bytes(cur.fetchall()[0][0]).decode())
            raws += [e.raw for e in page.events]
            if page.exhausted:
                return raws
            arg = None
    finally:
        conn.close()


def archived_raws(pipe: Pipeline) -> list[str]:
    conn = mysql.connect(pipe.archive)
    try:
        rows: list[tuple[object, ...]] = []
        for table in event_tables(conn):
            cur = conn.cursor()
            cur.execute(f"SELECT ts, id, raw FROM `{table}`")
            rows += cur.fetchall()
        return [str(raw) for _, _, raw in sorted(rows)]  # type: ignore[type-var]
    finally:
        conn.close()


def write_traps(pipe: Pipeline) -> None:
    """Events whose query holds the traps, timed after the generated ones (log order)."""
    for query in TRAPS:
        ts = START + timedelta(seconds=pipe.written)
        pipe.emu.writer.write(
            {
                "timestamp": ts.strftime("%Y-%m-%d %H:%M:%S"),
                "class": "general",
                "event": "status",
                "general_data": {"query": query, "status": 0},
            }
        )
        pipe.written += 1


def assert_archived_unchanged(pipe: Pipeline, count: int) -> None:
    expected = [perconatext.value_text(event) for event in file_events(pipe.emu.log_dir)]
    assert len(expected) == count
    assert source_raws(pipe) == expected
    assert archived_raws(pipe) == expected
    assert any("},\\n{" in raw for raw in expected)


def test_a_percona_9_source_with_default_settings_is_archived_unchanged(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipe = pipeline_factory(flavor="percona", server_version="9.4.0-1", component=True)
    assert (pipe.emu.log_dir / "audit_filter.log").read_text() == "[\n"
    pipe.write(400)
    write_traps(pipe)
    lines = (pipe.emu.log_dir / "audit_filter.log").read_text().splitlines()
    assert lines[1].startswith('{"timestamp":"') and len(lines) == 404, "JSONL: compact lines"
    pipe.producer_once("--read-buffer-size", "32768")
    pipe.consumer_once()
    pipe.assert_clean(403)
    assert_archived_unchanged(pipe, 403)


def test_a_log_changed_from_json_to_jsonl_under_a_new_name_is_drained_across_the_change(
    pipeline_factory: Callable[..., Pipeline],
) -> None:
    pipe = pipeline_factory(
        flavor="percona",
        server_version="8.4.10-10",
        audit_log_format="JSON",
        log_file="audit_filter.json",
        component=True,
    )
    pipe.write(200)
    write_traps(pipe)
    assert (pipe.emu.log_dir / "audit_filter.json").read_text().startswith("[\n  {\n")
    pipe.producer_once()
    # the upgrade: rotate, restart as 9.x with the default format and the advised new name
    rotated = pipe.emu.writer.rotate()
    assert rotated is not None and rotated.name.endswith(".json")
    pipe.emu.server_version, pipe.emu.audit_log_format = "9.4.0-1", None
    pipe.emu.log_file = "audit_filter.jsonl"
    pipe.emu.restart()
    pipe.write(200, seed=2)
    pipe.producer_once()
    pipe.consumer_once()
    pipe.assert_clean(403)
    assert_archived_unchanged(pipe, 403)
