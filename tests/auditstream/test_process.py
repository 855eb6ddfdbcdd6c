import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from auditstream.ports import free_port
from auditstream.process import (
    kill,
    log_tail,
    run_logged,
    running,
    spawn,
    start_listening,
    terminate,
)


def _wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def _wait_for(log: Path, text: str) -> None:
    _wait_until(lambda: text in log.read_text())


def _gone_or_zombie(pid: int) -> bool:
    """An orphan is reaped by init; until then it is a zombie ("Z")."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


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
    _wait_for(log, "ready")
    began = time.monotonic()
    terminate(proc, 0.5)
    assert proc.returncode == -signal.SIGKILL
    assert time.monotonic() - began < 10


def test_a_child_stops_on_sigterm_and_dropped_output_goes_nowhere() -> None:
    proc = spawn([sys.executable, "-c", "import time; print('x'); time.sleep(60)"], None)
    terminate(proc, 10)
    assert proc.returncode == -signal.SIGTERM
    terminate(proc, 10)  # already reaped: nothing to do


def test_kill_is_a_crash_the_child_runs_no_cleanup(tmp_path: Path) -> None:
    # kill -9 for the fault tests: no SIGTERM first, so neither handler nor atexit runs.
    log = tmp_path / "crash.log"
    code = (
        "import atexit, signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
        "atexit.register(lambda: print('cleanup', flush=True))\n"
        "print('ready', flush=True); time.sleep(60)\n"
    )
    proc = spawn([sys.executable, "-c", code], log)
    _wait_for(log, "ready")
    kill(proc)
    assert proc.returncode == -signal.SIGKILL
    assert "cleanup" not in log.read_text()
    terminate(proc, 10)  # already reaped: nothing to do
    # The same child stopped cleanly does run its cleanup (the test above can fail).
    proc = spawn([sys.executable, "-c", code], log)
    _wait_for(log, "ready\nready")
    terminate(proc, 10)
    assert proc.returncode == 0 and "cleanup" in log.read_text()


def test_a_group_kill_reaches_the_childs_own_children(tmp_path: Path) -> None:
    log = tmp_path / "group.log"
    code = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(p.pid, flush=True); time.sleep(60)\n"
    )
    proc = spawn([sys.executable, "-c", code], log)
    _wait_until(lambda: bool(log.read_text().strip()))
    grandchild = int(log.read_text().split()[0])
    kill(proc, group=True)
    assert proc.returncode == -signal.SIGKILL
    _wait_until(lambda: _gone_or_zombie(grandchild), 10)
    assert _gone_or_zombie(grandchild)


def test_a_server_that_dies_while_starting_fails_at_once_with_its_log(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    code = "import sys; print('bad config: no such table'); sys.exit(2)"
    began = time.monotonic()
    with pytest.raises(RuntimeError, match="no such table"):
        start_listening([sys.executable, "-c", code], log, free_port(), what="srv", timeout=60)
    assert time.monotonic() - began < 30


def test_a_server_not_ready_in_time_is_killed(tmp_path: Path) -> None:
    log = tmp_path / "slow.log"
    code = "import time; print('never listens', flush=True); time.sleep(60)"
    pids: list[int] = []

    def not_ready(proc: subprocess.Popen[bytes], deadline: float) -> None:
        pids.append(proc.pid)
        _wait_for(log, "never listens")
        raise TimeoutError("not ready")

    listener = socket.create_server(("127.0.0.1", 0))
    try:
        port = listener.getsockname()[1]  # something listens: only the readiness check fails
        with pytest.raises(TimeoutError, match="never listens"):
            start_listening(
                [sys.executable, "-c", code], log, port, what="srv", timeout=30, ready=not_ready
            )
    finally:
        listener.close()
    assert pids and not Path(f"/proc/{pids[0]}").exists()  # killed and reaped


def test_running_stops_the_child_after_the_block(tmp_path: Path) -> None:
    with running([sys.executable, "-c", "import time; time.sleep(60)"], None) as proc:
        assert proc.poll() is None
    assert proc.returncode == -signal.SIGTERM


def test_a_run_past_its_timeout_is_killed_and_raises(tmp_path: Path) -> None:
    log = tmp_path / "long.log"
    code = "import os, time; print(os.getpid(), flush=True); time.sleep(60)"
    with pytest.raises(subprocess.TimeoutExpired):
        run_logged([sys.executable, "-c", code], log, timeout=3.0)
    assert not Path(f"/proc/{int(log.read_text().split()[0])}").exists()  # killed and reaped
