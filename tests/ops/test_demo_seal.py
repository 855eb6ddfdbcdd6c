"""``make demo SEAL=1`` at a small size: checkpoints signed, shipped under a retention rule, verified."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_sealed_demo_signs_ships_and_verifies(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "ops.cli", "demo", "--seal", "--events=3000",
         "--oversized=1", f"--workdir={workdir}", "--timeout=240"],
        capture_output=True, text=True, timeout=400, check=False,
        cwd=Path(__file__).resolve().parents[2],  # the checkout: the OCI test server is there
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "OK: every stage agrees" in out and "passed" in out
    assert "control events: topic / archived" in out
    verify = (workdir / "verify-run.log").read_text()
    assert "0 event(s) after it not yet sealed" in verify
    assert "TAMPER" not in verify
    upload = (workdir / "consumer-upload.log").read_text()
    assert "retention rule 'audit-evidence', 30 days" in upload and "sealed " in upload
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    assert str(workdir) not in ps
