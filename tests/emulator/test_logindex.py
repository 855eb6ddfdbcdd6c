"""File discovery and indexing: the plugin's name pattern, ordering, gzip, torn and corrupt files."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

from emulator.logindex import AuditLogIndex, file_pattern


def ev(ts: str, ident: int, extra: str = "") -> str:
    return f'{{ "timestamp": "{ts}", "id": {ident}, "class": "general", "event": "status"{extra} }}'


def closed_file(path: Path, events: list[str]) -> None:
    path.write_text("[\n" + "".join(e + ",\n" for e in events) + "]\n")


def test_name_pattern_matches_the_plugins_names() -> None:
    pattern = file_pattern("audit", "log")
    for good in (
        "audit.log",
        "audit.20210115T140633.log",
        "audit.20210115T140633.log.gz",
        "audit.20210115T140633.log.gz.20210115T140633-1.enc",
        "audit.log.enc",
    ):
        assert pattern.match(good), good
    for bad in ("audit.log.bak", "audit-old.log", "xaudit.log", "audit.2021.log", "audit.log.gz.x"):
        assert not pattern.match(bad), bad


def test_files_are_ordered_by_their_first_event_and_odd_names_ignored(tmp_path: Path) -> None:
    closed_file(tmp_path / "audit.20200102T000000.log", [ev("2020-01-01 00:00:05", 0)])
    closed_file(tmp_path / "audit.20200101T000000.log", [ev("2020-01-01 00:00:09", 0)])
    closed_file(tmp_path / "audit.renamed-by-hand.log", [ev("2019-01-01 00:00:00", 0)])
    (tmp_path / "audit.20200103T000000.log.gz.enc").write_bytes(b"\x00secret")
    (tmp_path / "audit.log").write_text("[\n" + ev("2020-01-01 00:00:10", 0) + ",\n")
    files = AuditLogIndex(tmp_path).refresh()
    assert [f.path.name for f in files] == [
        "audit.20200102T000000.log",
        "audit.20200101T000000.log",
        "audit.log",
    ]


def test_gzip_is_read_transparently_and_bytes_are_exact(tmp_path: Path) -> None:
    events = [ev("2020-01-01 00:00:00", i, ', "q": "東京 ‘x’"') for i in range(3)]
    with gzip.open(tmp_path / "audit.20200101T000000.log.gz", "wt", encoding="utf-8") as fh:
        fh.write("[\n" + "".join(e + ",\n" for e in events) + "]\n")
    (f,) = AuditLogIndex(tmp_path).refresh()
    assert f.count == 3
    assert f.read_range(1, 1) == events[1].encode()


def test_a_torn_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    live = tmp_path / "audit.log"
    whole = ev("2020-01-01 00:00:00", 0)
    torn = ev("2020-01-01 00:00:00", 1)
    live.write_text("[\n" + whole + ",\n" + torn[:20])
    index = AuditLogIndex(tmp_path)
    assert index.refresh()[0].count == 1
    with live.open("a") as fh:
        fh.write(torn[20:] + ",\n")
    (f,) = index.refresh()
    assert f.count == 2 and f.read_range(1, 1) == torn.encode()


def test_corrupt_rotated_files_are_skipped_with_a_reason(tmp_path: Path, caplog) -> None:
    (tmp_path / "audit.20200101T000000.log.gz").write_bytes(b"not gzip at all")
    (tmp_path / "audit.20200102T000000.log").write_text("this is not JSON\n")
    closed_file(tmp_path / "audit.20200103T000000.log", [ev("2020-01-03 00:00:00", 0)])
    with caplog.at_level(logging.WARNING, logger="emulator.logindex"):
        files = AuditLogIndex(tmp_path).refresh()
    assert [f.path.name for f in files] == ["audit.20200103T000000.log"]
    reasons = [r for r in caplog.records if "unreadable audit log file" in r.getMessage()]
    assert {r.ctx["file"] for r in reasons} == {  # type: ignore[attr-defined]
        "audit.20200101T000000.log.gz",
        "audit.20200102T000000.log",
    }


def test_a_bad_line_inside_a_file_is_skipped_not_fatal(tmp_path: Path, caplog) -> None:
    closed_file(
        tmp_path / "audit.20200101T000000.log",
        [ev("2020-01-01 00:00:00", 0), "{ broken", ev("2020-01-01 00:00:00", 1)],
    )
    with caplog.at_level(logging.WARNING):
        (f,) = AuditLogIndex(tmp_path).refresh()
    assert list(f.ids) == [0, 1]
    assert any("unreadable event line" in r.getMessage() for r in caplog.records)


def test_rename_at_rotation_keeps_the_index(tmp_path: Path) -> None:
    live = tmp_path / "audit.log"
    live.write_text("[\n" + ev("2020-01-01 00:00:00", 0) + ",\n")
    index = AuditLogIndex(tmp_path)
    first = index.refresh()[0]
    with live.open("a") as fh:
        fh.write("]\n")
    live.rename(tmp_path / "audit.20200101T000000.log")
    (again,) = index.refresh()
    assert again is first and not again.live and again.ident == ("2020-01-01 00:00:00", 0)


def test_percona_reads_files_of_an_earlier_format_after_the_rename(tmp_path: Path) -> None:
    """Percona advises renaming the file with the format (audit.json -> audit.jsonl); its reader
    takes every file named after the base name, so the JSON-era rotated files are still read."""
    closed_file(tmp_path / "audit.20200101T000000.json", [ev("2020-01-01 00:00:00", 0)])
    closed_file(tmp_path / "audit.20200101T000001.json.gz.x", [ev("2020-01-01 00:00:00", 9)])
    (tmp_path / "audit.json").write_text("[\n" + ev("2020-01-01 00:00:01", 1) + ",\n")
    compact = '{"timestamp":"2020-01-01 00:00:02","id":2,"class":"general"}'
    (tmp_path / "audit.jsonl").write_text("[\n" + compact + ",\n")
    files = AuditLogIndex(tmp_path, "audit", "jsonl", any_suffix=True).refresh()
    assert [(f.path.name, f.live) for f in files] == [
        ("audit.20200101T000000.json", False),
        ("audit.jsonl", True),
    ]
    assert files[1].read_range(0, 0) == compact.encode()
    # Oracle's plugin (and the default) match the configured suffix only
    assert [f.path.name for f in AuditLogIndex(tmp_path, "audit", "jsonl").refresh()] == [
        "audit.jsonl"
    ]
