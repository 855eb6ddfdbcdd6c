"""Loopback ports of child servers: a free one to give them, and waiting for them to open or close.

Readiness for ``auditstream.process`` (a server is ready when it accepts TCP connections) and for
tests that run servers in-process.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(
    host: str,
    port: int,
    timeout: float,
    *,
    what: str,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Block until ``host:port`` accepts a TCP connection, or raise ``TimeoutError``.

    ``alive`` is an optional callable returning False when the server process has died, so a
    crash is reported at once (``RuntimeError``) instead of after the timeout.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise RuntimeError(f"{what} exited before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{what} did not listen on {host}:{port} within {timeout}s")


def wait_port_closed(host: str, port: int, timeout: float) -> None:
    """Block until nothing accepts on ``host:port`` (a stopped server may hold it briefly)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                pass
        except OSError:
            return
        time.sleep(0.1)
