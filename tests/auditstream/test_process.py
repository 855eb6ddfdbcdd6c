import signal
import sys
import time
from pathlib import Path

from auditstream.process import log_tail, run_logged, spawn, terminate


def test_output_is_appended_to_the_log_and_the_status_returned(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    assert run_logged([sys.executable, "-c", "print('one')"], log) == 0
    assert run_logged([sys.executable, "-c", "import sys; print('two'); sys.exit(3)"], log) == 3
    assert log.read_text() == "one\ntwo\n"
    assert log_tail(log, 4) == "two\n" and log_tail(tmp_path / "none.log") == "(no log)"


def test_a_child_that_ignores_sigterm_is_killed_after_the_timeout(tmp_path: Path) -> None:
    log = tmp_path / "stubborn.log"
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    proc = spawn([sys.executable, "-c", code], log)
    deadline = time.monotonic() + 30
    while "ready" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    began = time.monotonic()
    terminate(proc, 0.5)
    assert proc.returncode == -signal.SIGKILL
    assert time.monotonic() - began < 10


def test_a_child_stops_on_sigterm_and_dropped_output_goes_nowhere() -> None:
    proc = spawn([sys.executable, "-c", "import time; print('x'); time.sleep(60)"], None)
    terminate(proc, 10)
    assert proc.returncode == -signal.SIGTERM
    terminate(proc, 10)  # already reaped: nothing to do
