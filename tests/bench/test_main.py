"""``python -m bench --tiny``: every stage runs end to end at a tiny size, so the code cannot rot.

Nothing here asserts a speed: only that each stage measured something and printed it.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(600)
def test_every_stage_measures_and_prints(tmp_path):
    out = tmp_path / "figures.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--tiny",
            "--json",
            str(out),
            "--workdir",
            str(tmp_path / "w"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert out.exists(), proc.stderr[-3000:]
    data = json.loads(out.read_text())
    # "No step held" is a speed outcome (a loaded machine), not a stage that failed to measure.
    missing = [
        f"{f['stage']} / {f['metric']}: {f['note']}"
        for f in data["figures"]
        if f["value"] is None and not f["note"].startswith("no step held")
    ]
    assert not missing, "\n".join(missing) + "\n" + proc.stderr[-3000:]
    # Exit 1 says a figure is missing: only the steady rate may be, and only for that reason.
    (held,) = [f for f in data["figures"] if f["metric"] == "highest steady rate"]
    assert proc.returncode == (0 if held["value"] is not None else 1), proc.stderr[-3000:]
    stages = {f["stage"] for f in data["figures"]}
    for expected in (
        "limit: audit_log_read pages",
        "limit: pages read + raw produce",
        "limit: raw produce",
        "limit: LOAD DATA",
        "baseline (predecessor)",
        "producer (emulator → broker)",
        "consumer x1 (broker → audit_data)",
        "consumer x3 (broker → audit_data)",
        "end to end (log → audit_data)",
        "rotation (RENAME under inserts)",
        "dump + upload (OCI test server)",
    ):
        assert expected in stages
    # The table BENCHMARKS.md is pasted from, with the machine block above it.
    assert "| stage | metric | value |" in proc.stdout
    assert "| goal | figure | wanted | measured | met |" in proc.stdout
    assert "**cpu**: " in proc.stdout and "**other load**: " in proc.stdout
    # The work directory is removed: a run leaves nothing behind.
    assert not (tmp_path / "w").exists()


def test_unknown_stage_is_refused():
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "unknown stage" in proc.stderr


def test_help_from_another_directory_lists_every_stage(tmp_path):
    """From another directory ``python -m bench`` imports every stage and parses its flags.

    ``bench`` is not an installed package: outside the checkout it is found through
    ``PYTHONPATH`` (or ``make -C <checkout> bench``), as its module docstring says.
    """
    from bench.plan import STAGES

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # argparse wraps long words too: compare without any white space
    assert ",".join(s.name for s in STAGES) in "".join(proc.stdout.split())
