"""Child processes: started in their own session with output into a log, stopped reliably.

The one runner under the embedded components (``auditstream.embedded``: Tansu, mariadbd;
``auditstream.embedded_kafka``: Apache Kafka) and the demo's pipeline processes (``ops.demo``).

Stopping (``terminate``):

1. Send the signal (SIGTERM: a clean shutdown) unless the process already exited.
2. Wait up to ``timeout`` seconds for it to exit.
3. Still running: SIGKILL, and wait for it (always reaped: no zombie is left behind).

Traps:
- Children start with ``start_new_session=True``: a Ctrl-C in the terminal reaches only the
  parent, which then stops them in order (consumers after the producer, brokers last).
- The log is opened in append mode and closed in the parent right after the start; the child
  keeps its own descriptor, so restarts add to the same file.
- Arguments are fixed lists built by our own code, never a shell string.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path


def spawn(
    argv: Sequence[str],
    log: Path | None,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session, stdout and stderr appended to ``log`` (None: dropped)."""
    with contextlib.ExitStack() as stack:
        out = subprocess.DEVNULL if log is None else stack.enter_context(log.open("ab"))
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=None if env is None else dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def run_logged(
    argv: Sequence[str],
    log: Path,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> int:
    """Run ``argv`` to completion, output appended to ``log``; return its exit status.

    Raises:
        subprocess.TimeoutExpired: it ran longer than ``timeout`` (it is killed first).
    """
    with log.open("ab") as out:
        done = subprocess.run(
            list(argv),
            cwd=cwd,
            env=None if env is None else dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
            check=False,
        )
    return done.returncode


def terminate(
    proc: subprocess.Popen[bytes], timeout: float, sig: signal.Signals = signal.SIGTERM
) -> None:
    """Signal ``proc`` and reap it; SIGKILL when it outlives ``timeout`` seconds (Steps 1-3)."""
    # Step 1
    if proc.poll() is None:
        proc.send_signal(sig)
        # Step 2
        try:
            proc.wait(timeout if sig != signal.SIGKILL else None)
        except subprocess.TimeoutExpired:
            # Step 3
            proc.kill()
            proc.wait()


def log_tail(path: Path, chars: int = 3000) -> str:
    """The end of a child's log, for an error message."""
    return path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)"
