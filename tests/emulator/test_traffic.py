"""The traffic generator: realistic, reproducible, valid events and a fast bulk path."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from emulator.logfile import AuditLogWriter
from emulator.logindex import AuditLogIndex
from emulator.traffic import OVERSIZED_BYTES, generate_events, write_events


def test_same_seed_same_events_and_a_realistic_mix() -> None:
    a = list(generate_events(3000, seed=7))
    assert a == list(generate_events(3000, seed=7))
    assert a != list(generate_events(3000, seed=8))
    kinds = Counter((e["class"], e["event"]) for e in a)
    assert a[0]["event"] == "startup"
    for kind in [
        ("connection", "connect"),
        ("connection", "disconnect"),
        ("general", "status"),
        ("table_access", "read"),
        ("table_access", "insert"),
        ("table_access", "update"),
        ("table_access", "delete"),
    ]:
        assert kinds[kind] > 0, kind
    text = json.dumps(a, ensure_ascii=False)
    assert "<secret>" in text and "東京" in text and "query_statistics" in text
    assert len({e["login"]["ip"] for e in a if "login" in e}) > 20
    assert len({e["account"]["user"] for e in a if "account" in e}) > 20
    stamps = [e["timestamp"] for e in a]
    assert stamps == sorted(stamps) and "id" not in a[0]


def test_oversized_share_and_start() -> None:
    start = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)
    events = list(generate_events(150, seed=1, oversized_share=0.1, start=start))
    assert events[0]["timestamp"] == "2030-05-06 07:08:09"
    big = [e for e in events if len(e.get("general_data", {}).get("query", "")) > OVERSIZED_BYTES]
    assert 3 <= len(big) <= 30


def test_bulk_writer_output_is_valid_and_numbered_per_flavor(tmp_path: Path) -> None:
    for flavor in ("oracle", "percona"):
        writer = AuditLogWriter(tmp_path / flavor, flavor=flavor, flush_each=False)  # type: ignore[arg-type]
        assert write_events(writer, 6_000, seed=3) == 6_000
        writer.close()
        (f,) = AuditLogIndex(tmp_path / flavor).refresh()
        assert f.count == 6_000
        keys = list(zip(f.ts, f.ids, strict=True))
        assert len(set(keys)) == len(keys) and keys == sorted(keys)
        if flavor == "percona":
            assert list(f.ids) == list(range(6_000))
        else:
            assert f.ids[0] == 0 and max(f.ids) < 1000
        for i in (0, 5000, 5_999):
            json.loads(f.read_range(i, i))
