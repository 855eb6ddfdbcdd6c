"""A few seconds of ``bench.soak`` at a low rate: samples recorded, reconcile clean, all stopped.

Never a speed assertion: the figures are the benchmark's business (BENCHMARKS.md).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench import soak


def _children() -> list[str]:
    """Command lines of this process's live children (every pipeline process is one)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid():
            found.append(cmd)
    return found


def test_short_soak_records_samples_and_reconciles_clean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "soak.json"
    code = soak.main(
        [
            "--minutes=0.15",
            "--rate=100",
            "--consumers=2",
            "--sample-seconds=2",
            "--drain-timeout=60",
            f"--json={out}",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "reconcile: CLEAN" in printed
    result = json.loads(out.read_text())
    assert result["clean"] is True
    samples = result["samples"]
    assert len(samples) >= 4  # every 2 s over 9 s, plus the final one
    last = samples[-1]
    assert last["written"] > 100
    assert last["archived"] == last["written"]
    assert [s["elapsed"] for s in samples] == sorted(s["elapsed"] for s in samples)
    for name in ("emulator", "producer", "consumer-1", "consumer-2"):
        assert last["rss_mb"][name] > 0, name
        assert last["fds"][name] > 0, name
    assert any(s["bookmark_lag_s"] is not None for s in samples)
    assert not [c for c in _children() if "producer" in c or "consumer" in c or "emulator" in c]
