"""A TCP proxy for network-cut tests: put it between a component and its server, then break it.

``TcpProxy(host, port).start()`` listens on ``127.0.0.1:<proxy.port>`` and forwards every
connection to ``host:port`` (one thread per direction, no buffering beyond one read).

- ``cut()``: reset every open connection (RST, as a dead network path does) and refuse new
  ones until ``heal()``.
- ``stall()``: keep connections open but move no byte either way (a black-holed route: the
  peers only notice through their own timeouts); new connections are accepted and stalled
  too. ``heal()`` lets the bytes flow again, nothing lost.
- ``stall(after_bytes=n)``: first let ``n`` more bytes through from the server to the client,
  then stall as above: a reply (a 4 MB ``audit_log_read`` page) cut in the middle. Bytes beyond
  ``n`` are held, and delivered on ``heal()`` if the connection is still open.
- ``heal()``: back to forwarding.

Trap: Kafka clients learn the broker's advertised address from metadata and then connect there
directly, bypassing the proxy; proxy a broker only when it advertises the proxy's address.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
from types import TracebackType

_CHUNK = 65536


class TcpProxy:
    """Forward ``127.0.0.1:port`` to ``target_host:target_port``; see the module docstring."""

    def __init__(self, target_host: str, target_port: int, port: int = 0) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", port))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._conns: list[tuple[socket.socket, socket.socket]] = []
        self._flowing = threading.Event()
        self._flowing.set()
        self._refusing = False
        self._closed = False
        self._budget: int | None = None  # server→client bytes still let through by stall()
        self.accepted = 0
        self._thread = threading.Thread(target=self._accept, name="tcpproxy", daemon=True)

    def start(self) -> TcpProxy:
        """Start accepting."""
        self._thread.start()
        return self

    def cut(self) -> None:
        """Reset every connection and refuse new ones until ``heal()``."""
        with self._lock:
            self._refusing = True
            conns, self._conns = self._conns, []
        for pair in conns:
            for sock in pair:
                _reset(sock)

    def stall(self, after_bytes: int = 0) -> None:
        """Stop moving bytes (connections stay open) until ``heal()``; see the module docstring."""
        with self._lock:
            self._budget = after_bytes if after_bytes > 0 else None
        if after_bytes <= 0:
            self._flowing.clear()

    def heal(self) -> None:
        """Forward again."""
        with self._lock:
            self._refusing = False
            self._budget = None
        self._flowing.set()

    def close(self) -> None:
        """Stop listening and reset every connection."""
        self._closed = True
        self.cut()
        self._flowing.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() on Linux
        with contextlib.suppress(OSError):
            self._listener.close()
        self._thread.join(5)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                refusing = self._refusing
            if refusing:
                _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._conns.append((client, upstream))
                self.accepted += 1
            for src, dst, down in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pump, args=(src, dst, down), daemon=True).start()

    def _allowance(self, data: bytes, downstream: bool) -> tuple[bytes, bytes]:
        """Split ``data`` into what may pass now and what waits for ``heal()``."""
        with self._lock:
            if not downstream or self._budget is None:
                return data, b""
            n = min(self._budget, len(data))
            self._budget -= n
            if self._budget == 0:
                self._budget = None
                self._flowing.clear()
            return data[:n], data[n:]

    def _pump(self, src: socket.socket, dst: socket.socket, downstream: bool) -> None:
        try:
            while True:
                self._flowing.wait()
                readable, _, _ = select.select([src], [], [], 0.2)
                if not readable:
                    continue
                if not self._flowing.is_set():
                    continue  # stalled after select: leave the bytes in the kernel buffer
                data = src.recv(_CHUNK)
                if not data:
                    break
                while data:
                    now, data = self._allowance(data, downstream)
                    dst.sendall(now)
                    if data:
                        self._flowing.wait()
        except (OSError, ValueError):
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.close()


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), the way a broken path looks to the peer."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


__all__ = ["TcpProxy"]
