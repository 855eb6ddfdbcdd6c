"""Child processes: started in their own session with output into a log, stopped reliably.

The one runner for every child process of the project: the embedded servers
(``auditstream.embedded``: Tansu, mariadbd; ``auditstream.embedded_kafka``: Apache Kafka), the
test harness (``tests.harness``: the emulator in subprocess mode, moto), the demo's pipeline
processes (``ops.demo.children``) and the benchmark's components (``bench.measure.Child``).

Starting a server (``start_listening``):

1. Start it in its own session, stdout and stderr appended to its log (``spawn``).
2. Wait until it accepts TCP connections on its port; a crash is reported at once.
3. Wait for any further readiness check the caller gives (Kafka: a metadata answer).
4. On failure in 2-3: SIGKILL and reap it, and raise with the tail of its log.

Stopping (``terminate``):

1. Send the signal (SIGTERM: a clean shutdown) unless the process already exited.
2. Wait up to ``timeout`` seconds for it to exit.
3. Still running: SIGKILL, and wait for it (always reaped: no zombie is left behind).

A crash (``kill``, the fault tests' ``kill -9``): SIGKILL at once, no SIGTERM first, so the
child runs no cleanup at all; then reap it.

Traps:
- Children start with ``start_new_session=True``: a Ctrl-C in the terminal reaches only the
  parent, which then stops them in order (consumers after the producer, brokers last). The
  session makes the child its process group's leader, so ``group=True`` signals it together
  with anything it started (``os.killpg``); the default signals the child alone.
- A group is signalled only while the child is not yet reaped: after that its PID (and so the
  group id) may belong to another process.
- The log is opened in append mode and closed in the parent right after the start; the child
  keeps its own descriptor, so restarts add to the same file.
- Arguments are fixed lists built by our own code, never a shell string.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, ClassVar, Final, Literal, Self

from auditstream.ports import wait_for_port, wait_port_closed

#: ``spawn``'s ``log`` for a child that writes to this process's stdout and stderr.
INHERIT: Final = "inherit"

Log = Path | None | Literal["inherit"]
"""Where a child's output goes: a file (appended), ``None`` (dropped) or ``INHERIT``."""


def spawn(
    argv: Sequence[str],
    log: Log,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session, stdout and stderr appended to ``log`` (see ``Log``)."""
    with contextlib.ExitStack() as stack:
        out: int | IO[bytes] | None
        if isinstance(log, Path):
            out = stack.enter_context(log.open("ab"))
        else:
            out = None if log == INHERIT else subprocess.DEVNULL
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=None if env is None else dict(env),
            stdout=out,
            stderr=None if out is None else subprocess.STDOUT,
            start_new_session=True,
        )


def start_listening(
    argv: Sequence[str],
    log: Log,
    port: int,
    *,
    what: str,
    timeout: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    ready: Callable[[subprocess.Popen[bytes], float], None] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a server and wait until it serves on ``127.0.0.1:port`` (Steps 1-4 of starting).

    ``ready(proc, deadline)`` is a further check that raises ``RuntimeError`` or
    ``TimeoutError`` while the server is not ready by ``deadline`` (``time.monotonic``).

    Raises:
        RuntimeError: the server exited while starting (its log's tail in the message).
        TimeoutError: it was not ready within ``timeout`` seconds (likewise).
    """
    deadline = time.monotonic() + timeout
    # Step 1
    proc = spawn(argv, log, cwd=cwd, env=env)
    try:
        # Step 2
        wait_for_port("127.0.0.1", port, timeout, what=what, alive=lambda: proc.poll() is None)
        # Step 3
        if ready is not None:
            ready(proc, deadline)
    except (RuntimeError, TimeoutError) as exc:
        # Step 4
        kill(proc, group=True)
        if isinstance(log, Path):
            raise type(exc)(f"{exc}\n--- {log.name} (tail) ---\n{log_tail(log)}") from exc
        raise
    return proc


@contextmanager
def running(
    argv: Sequence[str],
    log: Log,
    *,
    stop_timeout: float = 30.0,
    port: int | None = None,
    what: str = "",
    timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """A child for the ``with`` block (listening on ``port`` first, if given); stopped after."""
    if port is None:
        proc = spawn(argv, log, env=env)
    else:
        proc = start_listening(argv, log, port, what=what or argv[0], timeout=timeout, env=env)
    try:
        yield proc
    finally:
        terminate(proc, stop_timeout)


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
    proc = spawn(argv, log, cwd=cwd, env=env)
    try:
        return proc.wait(timeout)
    except BaseException:  # the timeout, or Ctrl-C in the parent: never left running
        kill(proc)
        raise


def send(proc: subprocess.Popen[bytes], sig: signal.Signals, *, group: bool = False) -> None:
    """Signal ``proc`` (or its whole process group) unless it is already reaped."""
    if not group:
        proc.send_signal(sig)  # a no-op once the child is reaped
    elif proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)


def terminate(
    proc: subprocess.Popen[bytes],
    timeout: float,
    sig: signal.Signals = signal.SIGTERM,
    *,
    group: bool = False,
) -> None:
    """Signal ``proc`` and reap it; SIGKILL when it outlives ``timeout`` seconds (Steps 1-3)."""
    # Step 1
    if proc.poll() is None:
        send(proc, sig, group=group)
        # Step 2
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            # Step 3
            kill(proc, group=group)


def kill(proc: subprocess.Popen[bytes], *, group: bool = False) -> None:
    """``kill -9``: SIGKILL at once (no cleanup runs in the child), then reap it."""
    send(proc, signal.SIGKILL, group=group)
    proc.wait()


def read_log(path: Path) -> str:
    """A child's whole log ("" when there is none yet)."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def log_tail(path: Path, chars: int = 3000) -> str:
    """The end of a child's log, for an error message."""
    return read_log(path)[-chars:] if path.exists() else "(no log)"


def log_lines(path: Path, count: int) -> str:
    """The last ``count`` lines of a child's log ("" when there is none)."""
    return "\n".join(read_log(path).splitlines()[-count:])


# --------------------------------------------------------------------------- servers


class LocalServer:
    """A server child process on a loopback port: ``stop``, ``kill`` (a crash), ``restart``.

    Subclasses are dataclasses with ``port`` and ``proc`` fields and a ``start()`` (usually
    ``start_listening``); a restart keeps the port and the data. As a context manager
    (``with Server().start() as server:``) it is cleaned up on leaving the block.
    """

    port: int
    proc: subprocess.Popen[bytes] | None
    #: Seconds a clean shutdown may take before SIGKILL.
    stop_timeout: ClassVar[float] = 30.0

    def start(self, timeout: float = 60.0) -> LocalServer:
        """Start the server and wait until it accepts connections."""
        raise NotImplementedError

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM, wait for the PID, then for the port to be released."""
        if self.proc is None:
            return
        terminate(self.proc, self.stop_timeout if timeout is None else timeout)
        self.proc = None
        # A stopped server may hold its port for a few seconds after its PID is gone (Tansu).
        wait_port_closed("127.0.0.1", self.port, 10.0)

    def kill(self) -> None:
        """SIGKILL: a crash, for fault tests."""
        if self.proc is not None:
            kill(self.proc)
        self.proc = None

    def restart(self) -> None:
        """Stop, then start on the same port with the same data."""
        self.stop()
        self.start()

    def cleanup(self) -> None:
        """Stop; servers that own a data directory also delete it."""
        self.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
