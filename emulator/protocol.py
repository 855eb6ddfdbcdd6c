"""mysql-mimic's connection, extended where a real client notices the difference.

Extensions over mysql-mimic 3.0.5:

1. ``caching_sha2_password`` with the fast-auth-success packet, and error 1045 with the server's
   text for a wrong password or an unknown user (mimic sends 3162 and keeps the session open).
2. The warning count in every OK/EOF packet, and ``SERVER_STATUS_AUTOCOMMIT``/``IN_TRANS``.
3. Rows of any size: each row goes through ``MysqlStream.write``, which splits payloads of
   16 MiB or more into several packets (mimic's batch writer does not).
   Prepared statements work (no EOF after parameter definitions under DEPRECATE_EOF; result
   columns typed VAR_STRING, which libmysqlclient can bind).
4. Errors carry the real SQLSTATE (mimic derives it from a short table).
5. Every statement goes to ``AuditSession.execute``; mimic's sqlglot session is not used.
6. Packet headers are read exactly (mimic's stream assumes a 4-byte ``read`` returns 4 bytes).

Trap: a client that disconnects mid-result raises inside a write; the connection task ends
quietly and the server keeps serving the others.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Iterator
from typing import Any

from mysql_mimic import packets
from mysql_mimic.connection import Connection
from mysql_mimic.errors import MysqlError
from mysql_mimic.results import ResultColumn, ResultSet
from mysql_mimic.stream import ConnectionClosed, MysqlStream
from mysql_mimic.types import Capabilities, ColumnType
from mysql_mimic.utils import nonce

from emulator import selfaudit
from emulator.accounts import FAST_AUTH_SUCCESS, CachingSha2PasswordPlugin
from emulator.errors import UdfError
from emulator.proxy import Column, Result
from emulator.session import AuditSession

log = logging.getLogger(__name__)

_STATUS_IN_TRANS, _STATUS_AUTOCOMMIT = 0x0001, 0x0002


def lenenc_int(n: int) -> bytes:
    """A MySQL length-encoded integer."""
    if n < 251:
        return bytes((n,))
    if n < 1 << 16:
        return b"\xfc" + struct.pack("<H", n)
    if n < 1 << 24:
        return b"\xfd" + struct.pack("<I", n)[:3]
    return b"\xfe" + struct.pack("<Q", n)


def lenenc_str(data: bytes) -> bytes:
    """A MySQL length-encoded string."""
    return lenenc_int(len(data)) + data


def column_definition(col: Column) -> bytes:
    """A ``ColumnDefinition41`` packet."""
    name = col.name.encode("utf-8")
    length = col.length if col.type not in (251, 252) else 0xFFFFFFFF
    return b"".join(
        (
            lenenc_str(b"def"),
            lenenc_str(b""),
            lenenc_str(b""),
            lenenc_str(b""),
            lenenc_str(name),
            lenenc_str(name),
            b"\x0c",
            struct.pack("<HIBHB", col.charset, length, col.type, col.flags, col.decimals),
            b"\x00\x00",
        )
    )


class Stream:
    """mimic's stream, reading packet headers exactly (mimic's ``read(4)`` may return fewer).

    mimic's ``MysqlStream`` is compiled (mypyc) and cannot be subclassed: this wraps it and
    replaces ``read``; everything else is delegated.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.inner = MysqlStream(reader, writer)
        self.reader, self.writer = reader, writer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def read(self) -> bytes:
        """One (possibly multi-packet) payload."""
        data = b""
        while True:
            try:
                header = await self.reader.readexactly(4)
            except asyncio.IncompleteReadError as exc:
                raise ConnectionClosed from exc
            length = header[0] | header[1] << 8 | header[2] << 16
            expected = next(self.inner.seq)
            if header[3] != expected:
                raise UdfError(1835, f"Malformed packet: expected seq({expected}) got {header[3]}")
            if length:
                data += await self.reader.readexactly(length)
            if length < 0xFFFFFF:
                return data


class AuditConnection(Connection):  # type: ignore[misc]  # mimic is untyped
    """One client connection to an emulated server."""

    session: AuditSession

    # ------------------------------------------------------------ packets

    def _status(self) -> int:
        return _STATUS_AUTOCOMMIT | (_STATUS_IN_TRANS if self.session.in_transaction else 0)

    def ok(self, **kwargs: Any) -> bytes:  # noqa: D102
        eof = kwargs.get("eof", False)
        warnings = min(len(self.session.warnings), 0xFFFF)
        return b"".join(
            (
                b"\xfe" if eof else b"\x00",
                lenenc_int(kwargs.get("affected_rows", 0)),
                lenenc_int(kwargs.get("last_insert_id", 0)),
                struct.pack("<HH", self._status() | kwargs.get("flags", 0), warnings),
            )
        )

    def eof(self, **kwargs: Any) -> bytes:  # noqa: D102
        warnings = min(len(self.session.warnings), 0xFFFF)
        return b"\xfe" + struct.pack("<HH", warnings, self._status() | kwargs.get("flags", 0))

    def ok_or_eof(  # noqa: D102
        self, affected_rows: int = 0, last_insert_id: int = 0, warnings: int = 0, flags: int = 0
    ) -> bytes:
        if self.deprecate_eof():
            return self.ok(eof=True, affected_rows=affected_rows, flags=flags)
        return self.eof(flags=flags)

    def error(self, **kwargs: Any) -> bytes:  # noqa: D102
        code = int(kwargs.get("code", 1105))
        sqlstate = str(kwargs.get("sqlstate", "28000" if code == 1045 else "HY000"))
        msg = str(kwargs.get("msg", "Unknown error"))
        return b"\xff" + struct.pack("<H", code) + b"#" + sqlstate.encode()[:5] + msg.encode()

    # ------------------------------------------------------------ phases

    async def _start(self) -> None:
        try:
            await self.connection_phase()
        except (ConnectionClosed, ConnectionError, asyncio.IncompleteReadError, _LoginFailed):
            return
        try:
            await self.command_phase()
        finally:
            await self.session.close()

    async def authenticate(  # noqa: D102
        self,
        username: str,
        auth_response: bytes,
        client_plugin_name: str | None,
        connect_attrs: dict[str, str],
        auth_state: Any = None,
        server_plugin: Any = None,
    ) -> None:
        plugin = CachingSha2PasswordPlugin.name
        scramble_nonce = (self.handshake_auth_data or b"").rstrip(b"\x00")
        account = self.session.state.accounts().get(username)
        # Another plugin, or no scramble at all (libmysqlclient's COM_CHANGE_USER): switch.
        silent = not auth_response.strip(b"\x00") and account is not None and account.password
        if client_plugin_name not in (None, plugin) or silent:
            scramble_nonce = nonce(20)
            await self.stream.write(b"\xfe" + plugin.encode() + b"\x00" + scramble_nonce + b"\x00")
            auth_response = await self.stream.read()
        host = self.stream.writer.get_extra_info("peername", ("127.0.0.1", 0))[0]
        if account is not None and CachingSha2PasswordPlugin.matches(
            account.password, auth_response, scramble_nonce
        ):
            if account.password:
                await self.stream.write(b"\x01" + FAST_AUTH_SUCCESS)
            tls = self.stream.writer.transport.get_extra_info("ssl_object") is not None
            self.session.connection_type = "ssl" if tls else "tcp/ip"
            self.session.control = self.control
            self.session.start(account, self.connection_id, host, dict(connect_attrs))
            await self.stream.write(self.ok())
            return
        selfaudit.failed_connect(self.session, username, host, dict(connect_attrs))
        using = "YES" if auth_response.strip(b"\x00") else "NO"
        await self.stream.write(
            self.error(
                code=1045,
                sqlstate="28000",
                msg=f"Access denied for user '{username}'@'{host}' (using password: {using})",
            )
        )
        raise _LoginFailed

    # ------------------------------------------------------------ commands

    async def handle_query(self, data: bytes) -> None:  # noqa: D102
        com_query = packets.parse_com_query(
            capabilities=self.capabilities, client_charset=self.client_charset, data=data
        )
        try:
            result = await self.session.execute(com_query.sql)
        except UdfError as exc:
            await self.stream.write(
                self.error(code=exc.errno, sqlstate=exc.sqlstate, msg=exc.message)
            )
            return
        await self.write_result(result)

    async def handle_init_db(self, data: bytes) -> None:  # noqa: D102
        try:
            await self.session.use(packets.parse_com_init_db(self.client_charset, data))
        except UdfError as exc:
            await self.stream.write(
                self.error(code=exc.errno, sqlstate=exc.sqlstate, msg=exc.message)
            )
            return
        await self.stream.write(self.ok())

    async def handle_reset_connection(self, data: bytes) -> None:  # noqa: D102
        self.session.read_seq.read("null", 32768)
        self.session.warnings = []
        await self.stream.write(self.ok())

    def com_stmt_prepare_response(self, statement: Any) -> Iterator[bytes]:
        """COM_STMT_PREPARE_OK and the parameter definitions (no EOF under DEPRECATE_EOF)."""
        yield packets.make_com_stmt_prepare_ok(statement)
        if statement.num_params:
            for _ in range(statement.num_params):
                yield column_definition(Column("?"))
            if not self.deprecate_eof():
                yield self.eof()

    async def query(self, sql: str, query_attrs: dict[str, str]) -> ResultSet:
        """The binary protocol's path (prepared statements): every column is sent as text."""
        try:
            result = await self.session.execute(sql)
        except UdfError as exc:  # mimic's handler writes MysqlError's code and message
            raise MysqlError(exc.message, exc.errno) from exc
        columns = [ResultColumn(c.name, ColumnType.VAR_STRING) for c in result.columns]
        rows = [
            [None if v is None else v.decode("utf-8", "replace") for v in row]
            for row in result.rows
        ]
        return ResultSet(rows=rows, columns=columns)

    async def write_result(self, result: Result) -> None:
        """Write an OK packet or a text result set (rows of any size)."""
        if not result.columns:
            await self.stream.write(
                self.ok(affected_rows=result.affected_rows, last_insert_id=result.last_insert_id)
            )
            return
        header = [
            packets.make_column_count(
                capabilities=self.capabilities, column_count=len(result.columns)
            )
        ]
        header += [column_definition(c) for c in result.columns]
        if not self.deprecate_eof():
            header.append(self.eof())
        self.stream.write_many(header)
        for row in result.rows:
            payload = b"".join(b"\xfb" if v is None else lenenc_int(len(v)) + v for v in row)
            await self.stream.write(payload, drain=False)
        await self.stream.write(self.ok_or_eof(), drain=False)
        await self.stream.drain()


class _LoginFailed(Exception):
    """The client was refused; the connection ends after the error packet."""


__all__ = ["AuditConnection", "Capabilities", "column_definition", "lenenc_int"]
