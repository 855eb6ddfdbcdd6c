"""CPU time per process from /proc: descendants counted for components, not for the bench."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from bench import cputime

# The grandchild burns 0.3 s of CPU, says so, then sleeps; its parent only waits for it.
BURN = (
    "import sys, time\n"
    "while time.process_time() < 0.3:\n"
    "    pass\n"
    "import os\n"
    "print('burnt', os.getpid(), flush=True)\n"
    "time.sleep(60)\n"
)
PARENT = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {BURN!r}])"


def test_a_tree_counts_its_descendants_and_own_does_not() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    burner = 0
    try:
        assert parent.stdout is not None
        word, pid = parent.stdout.readline().split()
        burner = int(pid)
        assert word == "burnt"
        cpu = cputime.snapshot({"tree": parent.pid}, {"own": parent.pid})
        assert cpu["tree"] >= 0.3
        assert cpu["own"] < cpu["tree"] - 0.25
    finally:
        if burner:
            os.kill(burner, signal.SIGKILL)
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
    assert cputime.snapshot({"gone": parent.pid}) == {"gone": 0.0}


def test_per_event_and_its_text() -> None:
    us = cputime.per_event(
        {"mariadbd": 1.0, "consumer": 2.0}, {"mariadbd": 1.5, "consumer": 2.25}, 10_000
    )
    assert us == {"mariadbd": 50.0, "consumer": 25.0}
    assert cputime.describe(us) == "CPU µs/event: mariadbd 50, consumer 25 (sum 75)"
    assert cputime.per_event({"a": 1.0}, {"a": 2.0}, 0) == {}
    assert cputime.describe({}) == ""
