"""Percona 8.4.10+ / 9.x emulation: the JSONL format, its version-driven default, and a log whose
format changed (JSON files under their old name, JSONL under the new one) read as one.

Facts (docs/emulator.md, "Percona JSONL"): JSONL exists from 8.4.10-10 and is the 9.x default;
``audit_log_read()`` reads both layouts and re-encodes every event on one line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from auditstream import mysql
from emulator.state import EmulatorConfig
from tests.harness.emulator_fixtures import EmulatorHandle


def variables(handle: EmulatorHandle) -> dict[str, str]:
    conn = mysql.connect(handle.archiver_dsn, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute("SHOW VARIABLES LIKE 'audit_log%'")
        out = {str(k): str(v) for k, v in cur.fetchall()}
        cur.execute("SELECT @@version")
        out["version"] = str(cur.fetchall()[0][0])
        return out
    finally:
        conn.close()


def read_all(handle: EmulatorHandle, start: dict[str, Any]) -> list[str]:
    """Every page's text from ``start`` to the trailing null."""
    conn = mysql.connect(handle.archiver_dsn, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute("SET GLOBAL audit_log_filter.read_buffer_size = 32768")
        pages: list[str] = []
        arg: str | None = json.dumps(start)
        while True:
            if arg is None:
                cur.execute("SELECT audit_log_read()")
            else:
                cur.execute("SELECT audit_log_read(%s)", (arg,))
            value = cur.fetchall()[0][0]
            pages.append(bytes(value).decode())
            if pages[-1].endswith("null\n]\n"):
                return pages
            arg = None
            assert len(pages) < 1000
    finally:
        conn.close()


def found_ts(text: str) -> str:
    return str(json.loads(text.rstrip().rstrip(",") + "]")[0]["timestamp"])


@pytest.mark.parametrize(
    ("version", "given", "expected"),
    [
        ("9.4.0-1", None, "JSONL"),
        ("9.4.0-1", "JSON", "JSON"),
        ("8.4.10-10", None, "JSON"),
        ("8.4.10-10", "JSONL", "JSONL"),
    ],
)
def test_the_format_default_follows_the_emulated_version(
    emulator_factory: Callable[..., EmulatorHandle],
    version: str,
    given: str | None,
    expected: str,
) -> None:
    handle = emulator_factory(
        "percona", server_version=version, audit_log_format=given, component=True
    )
    found = variables(handle)
    assert found["audit_log_filter.format"] == expected
    assert found["version"] == version
    handle.writer.write({"class": "general", "event": "status", "general_data": {"query": "a/b"}})
    text = (handle.log_dir / "audit_filter.log").read_text()
    if expected == "JSONL":  # one compact event per line
        assert text.splitlines()[1].startswith('{"timestamp":"')
        assert text.endswith('"general_data":{"query":"a/b"}},\n')
    else:  # Percona's JSON: pretty-printed over several lines, "/" escaped
        assert text.splitlines()[1:3] == ["  {", f'    "timestamp": "{found_ts(text)}",']
        assert text.endswith('    "general_data": {\n      "query": "a\\/b"}\n  },\n')


@pytest.mark.parametrize(
    ("flavor", "version", "message"),
    [
        ("percona", "8.0.39-30", "has no JSONL format"),
        ("percona", "8.4.9-9", "has no JSONL format"),
        ("oracle", None, "only Percona Server writes"),
        ("oracle", "nine", "does not start with X.Y.Z"),
    ],
)
def test_jsonl_where_the_server_has_none_is_refused(
    tmp_path: Path, flavor: str, version: str | None, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        EmulatorConfig(
            log_dir=tmp_path, flavor=flavor, server_version=version, audit_log_format="JSONL"
        )
    argv = ["--port", "0", "--log-dir", str(tmp_path), "--flavor", flavor]
    argv += ["--audit-log-format", "JSONL"] + (["--server-version", version] if version else [])
    done = subprocess.run(
        [sys.executable, "-m", "emulator", *argv], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 2 and message in done.stderr.decode(), done.stderr


def test_a_log_rotated_from_json_to_jsonl_under_a_new_name_reads_as_one(
    emulator_factory: Callable[..., EmulatorHandle],
) -> None:
    """Percona's advice: change the file name with the format. Both eras are read in order,
    ids continue across the change, and every page is the re-encoded text."""
    handle = emulator_factory(
        "percona",
        server_version="8.4.10-10",
        audit_log_format="JSON",
        log_file="audit_filter.json",
        component=True,
    )
    queries = ["SELECT 1", "SELECT '},\n{' AS x", 'SELECT "a/b"\n  FROM t']
    first = handle.writer.write({"class": "general", "general_data": {"query": queries[0]}})
    handle.writer.write({"class": "general", "general_data": {"query": queries[1]}})
    rotated = handle.writer.rotate()
    assert rotated is not None and rotated.suffix == ".json"
    assert rotated.read_text().count("\n") > 10, "Percona's JSON: an event over several lines"
    handle.server_version, handle.audit_log_format = "9.4.0-1", None
    handle.log_file = "audit_filter.jsonl"
    handle.restart()
    assert variables(handle)["audit_log_filter.format"] == "JSONL"
    handle.writer.write({"class": "general", "general_data": {"query": queries[2]}})
    new_line = (handle.log_dir / "audit_filter.jsonl").read_text().splitlines()[1]
    assert new_line.startswith('{"timestamp":') and new_line.endswith("},")

    pages = read_all(handle, {"timestamp": first[0], "id": first[1]})
    events = [e for page in pages for e in json.loads(page) if e is not None]
    assert [e["general_data"]["query"] for e in events] == queries
    assert [e["id"] for e in events] == [first[1], first[1] + 1, first[1] + 2]
    text = "".join(pages)
    assert '"general_data": {"query": "SELECT \'},\\n{\' AS x"}' in text
    assert '"query": "SELECT \\"a/b\\"\\n  FROM t"' in text
