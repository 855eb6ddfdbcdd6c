"""The writer: the plugin's file format, id counters, rotation, gzip and pruning."""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path

import pytest

from emulator.logfile import AuditLogWriter as _Writer
from emulator.logfile import event_key, format_event, rotated_name

_open: list[_Writer] = []


def AuditLogWriter(*args, **kwargs) -> _Writer:  # noqa: N802 - closes what the test opened
    writer = _Writer(*args, **kwargs)
    _open.append(writer)
    return writer


@pytest.fixture(autouse=True)
def _close_writers():
    yield
    while _open:
        _open.pop().close()


SAMPLE = Path("/work/shared/samples/mysql-8.0.22-commercial-audit.log")


def sample_lines() -> list[bytes]:
    if not SAMPLE.exists():
        pytest.skip("shared sample missing")
    return [line.rstrip(b"\n") for line in SAMPLE.read_bytes().splitlines() if line.strip()]


def test_raw_sample_lines_are_kept_byte_for_byte(tmp_path: Path) -> None:
    writer = AuditLogWriter(tmp_path)
    lines = sample_lines()
    for line in lines:
        writer.write(line.decode())
    writer.close()
    body = (tmp_path / "audit.log").read_bytes()
    assert body == b"[\n" + b"".join(line.removesuffix(b",") + b",\n" for line in lines)
    assert writer.last == ("2020-10-19 19:32:16", 0)


def test_dicts_get_the_plugin_spacing_and_key_order(tmp_path: Path) -> None:
    text = format_event(
        {
            "class": "audit",
            "id": 3,
            "timestamp": "2020-10-19 19:21:33",
            "event": "startup",
            "startup_data": {"args": ["a", "b"], "x": {}},
            "q": "naïve ‘quote’",
        }
    ).decode()
    assert text.startswith(
        '{ "timestamp": "2020-10-19 19:21:33", "id": 3, "class": "audit", "event": "startup"'
    )
    assert '"args": ["a", "b" ]' in text and '"x": { }' in text and "naïve ‘quote’" in text
    assert json.loads(text)["q"] == "naïve ‘quote’"


def test_oracle_ids_count_within_a_second_percona_ids_are_global(tmp_path: Path) -> None:
    stamps = iter(["2024-01-01 00:00:00"] * 3 + ["2024-01-01 00:00:01"] * 2)
    oracle = AuditLogWriter(tmp_path / "o", clock=lambda: next(stamps))
    keys = [oracle.write({"class": "general", "event": "status"}) for _ in range(5)]
    assert [k[1] for k in keys] == [0, 1, 2, 0, 1]
    stamps = iter(["2024-01-01 00:00:00"] * 3 + ["2024-01-01 00:00:01"] * 2)
    percona = AuditLogWriter(tmp_path / "p", flavor="percona", clock=lambda: next(stamps))
    assert [percona.write({"class": "x", "event": "y"})[1] for _ in range(5)] == [0, 1, 2, 3, 4]


def test_rotation_closes_the_array_and_names_the_file_after_its_last_event(tmp_path: Path) -> None:
    writer = AuditLogWriter(tmp_path)
    writer.write({"timestamp": "2021-01-15 14:06:32", "class": "a", "event": "b"})
    writer.write({"timestamp": "2021-01-15 14:06:33", "class": "a", "event": "b"})
    rotated = writer.rotate()
    assert rotated == tmp_path / rotated_name("audit", "log", "2021-01-15 14:06:33")
    assert rotated.name == "audit.20210115T140633.log"
    closed = rotated.read_text()
    assert closed.endswith("},\n]\n")
    assert (tmp_path / "audit.log").read_text() == "[\n"
    assert writer.rotate() is None, "an empty live file does not rotate"


def test_size_rotation_with_gzip_and_pruning_by_size(tmp_path: Path) -> None:
    stamps = (f"2021-01-15 14:{m:02d}:00" for m in range(60))
    writer = AuditLogWriter(
        tmp_path, rotate_on_size=300, compress=True, max_size=700, clock=lambda: next(stamps)
    )
    for _ in range(20):
        writer.write({"class": "general", "event": "status", "general_data": {"query": "x" * 100}})
    gz = sorted(p for p in tmp_path.iterdir() if p.name.endswith(".log.gz"))
    assert gz, "rotated files are gzipped"
    assert sum(p.stat().st_size for p in gz) <= 700
    with gzip.open(gz[-1], "rt") as fh:
        text = fh.read()
    assert text.startswith("[\n") and text.endswith("]\n")
    assert gz[0].name > "audit.20210115T140000.log.gz", "the oldest files were pruned"


def test_pruning_by_age(tmp_path: Path) -> None:
    old = tmp_path / "audit.20000101T000000.log"
    old.write_text("[\n]\n")
    writer = AuditLogWriter(tmp_path, prune_seconds=3600)
    assert writer.prune() == [old]
    assert not old.exists()


def test_resume_drops_a_torn_last_line_and_continues_ids(tmp_path: Path) -> None:
    (tmp_path / "audit.log").write_bytes(
        b'[\n{ "timestamp": "2024-01-01 00:00:00", "id": 0, "class": "a", "event": "b" },\n{ "timest'
    )
    writer = AuditLogWriter(tmp_path, clock=lambda: "2024-01-01 00:00:00")
    assert writer.last == ("2024-01-01 00:00:00", 0)
    assert writer.write({"class": "a", "event": "b"}) == ("2024-01-01 00:00:00", 1)
    lines = (tmp_path / "audit.log").read_text().splitlines()
    assert len(lines) == 3 and all(line.endswith("},") for line in lines[1:])


def test_raw_text_without_timestamp_or_on_two_lines_is_refused(tmp_path: Path) -> None:
    writer = AuditLogWriter(tmp_path)
    with pytest.raises(ValueError):
        writer.write('{"class": "a"}')
    with pytest.raises(ValueError):
        writer.write('{"timestamp": "2024-01-01 00:00:00",\n"id": 0}')
    assert event_key(b'{"id": 7, "timestamp": "2024-01-01 00:00:00"}') == ("2024-01-01 00:00:00", 7)


def test_two_rotations_in_one_second_do_not_collide(tmp_path: Path) -> None:
    writer = AuditLogWriter(tmp_path)
    names = set()
    for _ in range(2):
        writer.write({"timestamp": "2021-01-15 14:06:33", "class": "a", "event": "b"})
        rotated = writer.rotate()
        assert rotated is not None
        names.add(rotated.name)
    assert len(names) == 2
    assert all(os.path.getsize(tmp_path / n) > 0 for n in names)
    time.sleep(0)


def test_a_second_writer_follows_a_rotation_made_by_the_first(tmp_path: Path) -> None:
    a = AuditLogWriter(tmp_path, clock=lambda: "2024-01-01 00:00:00")
    b = AuditLogWriter(tmp_path, clock=lambda: "2024-01-01 00:00:01")
    a.write({"class": "a", "event": "x"})
    rotated = a.rotate()
    assert rotated is not None
    b.write({"class": "b", "event": "y"})
    assert "b" not in rotated.read_text(), "b reopened the new live file"
    live = (tmp_path / "audit.log").read_text().splitlines()
    assert live[0] == "[" and '"class": "b"' in live[1]
    assert b.rotate() is not None


def test_percona_pretty_layout_is_indexed_resumed_and_rotated(tmp_path: Path) -> None:
    """Percona's JSON layout: each event over several lines; the index finds each span, a
    restarted writer continues the global ids and still rotates what the live file holds."""
    from emulator.logindex import AuditLogIndex

    clock = lambda: "2024-01-01 00:00:00"  # noqa: E731
    writer = AuditLogWriter(tmp_path, flavor="percona", layout="pretty", clock=clock)
    writer.write({"class": "general", "general_data": {"query": "SELECT '},\n  }\n{' -- a/b"}})
    writer.write({"class": "general", "rows": [1, {"a": 2}], "empty": {}})
    writer.close()
    text = (tmp_path / "audit.log").read_text()
    assert text.startswith('[\n  {\n    "timestamp": "2024-01-01 00:00:00",\n    "id": 0,\n')
    assert '"query": "SELECT \'},\\n  }\\n{\' -- a\\/b"}\n  },\n  {\n' in text
    assert json.loads(text.rstrip().rstrip(",") + "]")[1]["rows"] == [1, {"a": 2}]
    (f,) = AuditLogIndex(tmp_path).refresh()
    assert f.count == 2 and f.ids.tolist() == [0, 1]
    assert json.loads(f.read_range(1, 1))["empty"] == {}
    assert f.read_range(0, 0).startswith(b"{\n") and f.read_range(0, 0).endswith(b"\n  }")

    again = AuditLogWriter(tmp_path, flavor="percona", layout="pretty", clock=clock)
    assert again.last == ("2024-01-01 00:00:00", 1)
    assert again.write({"class": "general"}) == ("2024-01-01 00:00:00", 2)
    rotated = again.rotate()
    assert rotated is not None
    body = rotated.read_text().removesuffix(",\n]\n")  # the emulator's closing, as for Oracle
    assert [e["id"] for e in json.loads(body + "]")] == [0, 1, 2]


def test_a_pretty_event_is_indexed_only_once_its_closing_line_is_written(tmp_path: Path) -> None:
    from emulator.logindex import AuditLogIndex

    live = tmp_path / "audit.log"
    whole = '  {\n    "timestamp": "2024-01-01 00:00:00",\n    "id": 0\n  },\n'
    live.write_text("[\n" + whole + '  {\n    "timestamp": "2024-01-01 00:00:01",\n')
    index = AuditLogIndex(tmp_path)
    assert index.refresh()[0].count == 1
    with live.open("a") as fh:
        fh.write('    "id": 1\n  }')
    assert index.refresh()[0].count == 1, "the closing line has no newline yet"
    with live.open("a") as fh:
        fh.write(",\n")
    (f,) = index.refresh()
    assert f.ids.tolist() == [0, 1]
    assert f.read_range(1, 1) == b'{\n    "timestamp": "2024-01-01 00:00:01",\n    "id": 1\n  }'
