"""An emulated MySQL Enterprise Audit server: a MySQL-protocol listener over one log directory.

``EmulatorServer(config).start()`` serves from a background thread with its own event loop
(tests); ``serve_forever()`` serves in the calling thread until cancelled (the CLI). Several
servers can run side by side: each has its own port, log directory and ``server_uuid``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
from typing import Self

from mysql_mimic.control import LocalControl
from mysql_mimic.server import MysqlServer

from emulator.accounts import Accounts
from emulator.protocol import AuditConnection, Stream
from emulator.session import AuditSession
from emulator.state import EmulatorConfig, ServerState

log = logging.getLogger(__name__)


class Registry(LocalControl):  # type: ignore[misc]  # mimic is untyped
    """mimic's connection registry, with a lookup (``KILL`` checks the victim's account)."""

    def get(self, connection_id: int) -> AuditConnection | None:
        """The live connection with this id, if any."""
        conn: AuditConnection | None = self._connections.get(connection_id)
        return conn


class _Server(MysqlServer):  # type: ignore[misc]  # mimic is untyped
    """mysql-mimic's server building ``AuditConnection``s over one ``ServerState``."""

    def __init__(self, state: ServerState) -> None:
        super().__init__(identity_provider=Accounts(state.config.users), ssl=_tls(state))
        self.state = state
        self.control = Registry()
        self.clients: set[asyncio.StreamWriter] = set()

    async def _client_connected_cb(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.clients.add(writer)
        connection = AuditConnection(
            stream=Stream(reader, writer),
            session=AuditSession(self.state),
            control=self.control,
            identity_provider=self.identity_provider,
            server_capabilities=self.capabilities,
            ssl=self.ssl,
        )
        connection_id = await self.control.add(connection)
        connection.connection_id = connection_id
        try:
            await connection.start()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            log.debug("client went away", extra={"ctx": {"connection_id": connection_id}})
        except Exception:  # a bug must not take the listener down
            log.exception("connection failed", extra={"ctx": {"connection_id": connection_id}})
        finally:
            self.clients.discard(writer)
            with contextlib.suppress(Exception):
                await connection.session.close()
            writer.close()
            await self.control.remove(connection_id)


def _tls(state: ServerState) -> ssl.SSLContext | None:
    """A server TLS context when a certificate is configured (clients may then use TLS)."""
    cert, key = state.config.tls_cert, state.config.tls_key
    if cert is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


class EmulatorServer:
    """One emulated server. ``port`` is known once started (0 in the config = any free port)."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.state = ServerState(config)
        self.port = config.port
        self._server: _Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    async def serve_forever(self, ready: threading.Event | None = None) -> None:
        """Listen and serve until ``stop()`` (or cancellation)."""
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        server = _Server(self.state)
        await server.start_server(host=self.config.host, port=self.config.port, reuse_address=True)
        self._server = server
        self.port = int(server.sockets()[0].getsockname()[1])
        log.info(
            "emulator listening",
            extra={
                "ctx": {
                    "port": self.port,
                    "flavor": self.config.flavor,
                    "server_uuid": self.state.server_uuid,
                }
            },
        )
        if ready is not None:
            ready.set()
        try:
            await self._stopped.wait()
        finally:
            server.close()
            for writer in list(server.clients):
                writer.close()
            await asyncio.sleep(0)
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.state.writer.close()

    def start(self) -> Self:
        """Serve from a daemon thread; returns once the port accepts connections."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self.serve_forever(ready))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the starting thread
                failure.append(exc)
                ready.set()

        self._thread = threading.Thread(
            target=run, name=f"emulator-{self.config.port}", daemon=True
        )
        self._thread.start()
        ready.wait(30)
        if failure:
            raise failure[0]
        return self

    def stop_soon(self) -> None:
        """Ask ``serve_forever`` to return (call from the serving loop, e.g. a signal handler)."""
        if self._stopped is not None:
            self._stopped.set()

    def stop(self) -> None:
        """Stop listening, drop every client and close the log file; idempotent."""
        if self._loop is not None and self._stopped is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
