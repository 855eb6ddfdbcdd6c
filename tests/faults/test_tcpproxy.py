"""The test proxy itself: it forwards, ``cut`` resets and refuses, ``stall`` holds bytes."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest

from tests.harness.tcpproxy import TcpProxy


@pytest.fixture
def echo() -> Iterator[int]:
    """A TCP echo server on a free port."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            threading.Thread(target=pump, args=(conn,), daemon=True).start()

    def pump(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the proxy resets it in some tests
            while data := conn.recv(4096):
                conn.sendall(data)

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    stop.set()
    server.close()


def dead(sock: socket.socket) -> bool:
    """True when the connection was reset or closed by the other side."""
    try:
        sock.sendall(b"ping")
        return sock.recv(10) == b""
    except OSError:
        return True


def roundtrip(port: int, data: bytes, timeout: float = 2.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return sock.recv(4096)


def test_forwards_then_cut_resets_and_refuses_until_healed(echo: int) -> None:
    with TcpProxy("127.0.0.1", echo) as proxy:
        assert roundtrip(proxy.port, b"hello") == b"hello"
        held = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
        held.sendall(b"x")
        assert held.recv(10) == b"x"
        proxy.cut()
        assert dead(held)  # the open connection was reset
        held.close()
        try:  # new ones are reset on accept (sometimes already during connect)
            refused = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
        except OSError:
            pass
        else:
            with refused:
                assert dead(refused)
        proxy.heal()
        assert roundtrip(proxy.port, b"back") == b"back"


def test_stall_holds_bytes_until_healed_and_loses_none(echo: int) -> None:
    with TcpProxy("127.0.0.1", echo) as proxy:
        sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=0.5)
        proxy.stall()
        sock.sendall(b"held")
        with pytest.raises(TimeoutError):
            sock.recv(10)
        proxy.heal()
        sock.settimeout(3)
        assert sock.recv(10) == b"held"
        sock.close()


def test_stall_after_bytes_cuts_a_reply_in_the_middle(echo: int) -> None:
    with TcpProxy("127.0.0.1", echo) as proxy:
        sock = socket.create_connection(("127.0.0.1", proxy.port), timeout=0.5)
        proxy.stall(after_bytes=6)
        sock.sendall(b"first-half|second-half")  # upstream bytes are not counted
        got = b""
        with pytest.raises(TimeoutError):
            while True:
                got += sock.recv(64)
        assert got == b"first-"
        proxy.heal()
        sock.settimeout(3)
        while len(got) < 22:
            got += sock.recv(64)
        assert got == b"first-half|second-half"
        sock.close()
