"""The README's first command, at a small size: every stage must agree, and nothing is left running."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_runs_end_to_end_and_counts_agree(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ops.cli",
            "demo",
            "--events=3000",
            "--oversized=2",
            f"--workdir={workdir}",
            "--timeout=240",
        ],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "OK: every stage agrees" in out
    assert "3,000" in out and "2,998" in out  # generated; published = archived = verified
    manifests = list((workdir / "objects").rglob("manifest.json"))
    assert len(manifests) == 1
    # Every child was stopped: nothing listens in the work directory's name any more.
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert str(workdir) not in ps


def test_a_control_event_missing_from_the_archive_is_a_mismatch() -> None:
    # The demo stops its consumers once the archive has caught up; a gap or checkpoint still
    # unread in the control topic then made verify fail with "missing link". Counting them
    # makes the wait cover them and the summary say so.
    from ops.demo.summary import Summary

    agreed = Summary(generated=10, oversized=1, published=9, gaps=1, controls=2,
                     archived=9, controls_archived=2, in_rotated_tables=9, in_verified_objects=9)  # fmt: skip
    assert agreed.ok()
    behind = Summary(generated=10, oversized=1, published=9, gaps=1, controls=2,
                     archived=9, controls_archived=1, in_rotated_tables=9, in_verified_objects=9)  # fmt: skip
    assert not behind.ok()
