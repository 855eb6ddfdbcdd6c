"""One client session: decides per statement what the emulator answers and what is proxied.

1. Tokenise the statement (``emulator.sqltext``); clear the warnings unless it reads them.
2. Answer locally: ``SHOW WARNINGS|ERRORS|COUNT(*) WARNINGS``, ``SHOW VARIABLES`` (merged with
   the backend's), ``SET`` of audit variables, ``SELECT`` lists made only of audit functions and
   owned variables, and reads of ``mysql.audit_log_filter`` / ``mysql.audit_log_user``.
3. Otherwise substitute audit functions and owned variables by their values and proxy the
   statement to the backend (so ``INSERT ... VALUES (@@server_uuid, ...)`` works).
4. Write the session's own audit events when its filter says so (``emulator.selfaudit``).

Trap: the warnings of the *last* statement are what ``SHOW WARNINGS`` returns; an
``audit_log_read`` that skipped events leaves them there until the next statement.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from mysql_mimic.session import BaseSession
from mysql_mimic.variables import GlobalVariables, SessionVariables

from emulator import functions, selfaudit
from emulator.accounts import Account
from emulator.errors import UdfError, Warning
from emulator.localexpr import (
    CLAUSES,
    bare_select_items,
    column_for,
    column_name,
    encode_value,
    literal,
    local_spans,
    mentions_filter_tables,
    reads_diagnostics,
    syntax_error,
    top_level,
)
from emulator.proxy import Backend, Column, Result
from emulator.reader import ReadSequence
from emulator.sqltext import (
    SqlSyntaxError,
    Token,
    split_top_level,
    sysvar_name,
    tokenize,
    unquote,
)
from emulator.statements import (
    filter_tables_query,
    kill_statement,
    set_statement,
    show_statement,
)

if TYPE_CHECKING:
    from emulator.state import ServerState


class AuditSession(BaseSession):  # type: ignore[misc]  # mimic is untyped
    """The state of one client connection to an emulated server."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.variables = SessionVariables(GlobalVariables())
        self.variables.set("version", state.version, force=True)
        self.variables.set("version_comment", state.version_comment, force=True)
        self.username: str | None = None
        self.database: str | None = None
        self.account: Account | None = None
        self.connection_id = 0
        self.client_host = "127.0.0.1"
        self.connect_attrs: dict[str, str] = {}
        self.connection_type = "tcp/ip"
        self.read_seq = ReadSequence(
            state.index, state.flavor, reencode=state.config.reencoding_reader
        )
        buffer = state.globals[state.buffer_var]
        self.session_buffer = int(buffer)
        self.filter_id: int = 0
        self.rule: Any = None
        self.warnings: list[Warning] = []
        self.backend = Backend(state.config.backend_dsn)
        self.in_transaction = False
        self.closed = False
        self.control: Any = None  # the server's Registry, set by the connection at login

    def buffer_size(self) -> int:
        """The read buffer that applies to this session's ``audit_log_read`` calls."""
        if self.state.flavor == "percona":
            return int(self.state.globals[self.state.buffer_var])
        return self.session_buffer

    # ----------------------------------------------------------------- lifecycle

    def start(self, account: Account, connection_id: int, host: str, attrs: dict[str, str]) -> None:
        """Called after a successful login: fixes the session's filter and logs ``connect``.

        A second call (COM_CHANGE_USER) logs ``change_user`` and re-reads the filter.
        """
        event = "change_user" if self.account is not None else "connect"
        self.account, self.username = account, account.name
        self.connection_id, self.client_host, self.connect_attrs = connection_id, host, attrs
        self.filter_id, self.rule = self.state.filters.for_account(account.name, account.host)
        self.backend.database = self.database
        selfaudit.connect(self, status=0, event=event)

    async def close(self) -> None:  # noqa: D102
        if self.closed:
            return
        self.closed = True
        if self.account is not None:
            selfaudit.disconnect(self)
        await self.backend.close()

    async def use(self, database: str) -> None:  # noqa: D102
        await self.execute(f"USE `{database.replace('`', '``')}`", command="Init DB")

    # ----------------------------------------------------------------- statements

    async def execute(self, sql: str, command: str = "Query") -> Result:
        """Run one statement; raises ``UdfError`` with the server's error."""
        # Step 1
        try:
            tokens = tokenize(sql)
        except SqlSyntaxError:
            tokens = []
        diagnostics = reads_diagnostics(tokens)
        status = 0
        try:
            if not diagnostics:
                self.warnings = []
            result = await self._dispatch(sql, tokens)  # Steps 2-3
        except UdfError as exc:
            status = exc.errno
            self.warnings = [Warning("Error", exc.errno, exc.message)]
            raise
        else:
            if not diagnostics:
                self.warnings = result.warnings + self.warnings
            return result
        finally:
            # Step 4
            selfaudit.statement(self, sql, tokens, status, command)

    async def _dispatch(self, sql: str, tokens: list[Token]) -> Result:
        if not sql.strip():
            raise UdfError(1065, "Query was empty", "42000")
        first = tokens[0].upper if tokens else ""
        if first == "SHOW":
            shown = await show_statement(self, sql, tokens)
            if shown is not None:
                return shown
        if first == "SET":
            return await set_statement(self, sql, tokens)
        if first == "KILL":
            return await kill_statement(self, tokens)
        if first == "USE" and len(tokens) >= 2:
            result = await self.backend.execute(sql)
            self.database = (
                unquote(tokens[1].text) if tokens[1].kind == "str" else tokens[1].text.strip("`")
            )
            self.backend.database = self.database
            return result
        if mentions_filter_tables(tokens):
            return filter_tables_query(self, sql)
        spans = local_spans(tokens)
        if spans:
            local = await self._local_select(sql, tokens, spans)
            if local is not None:
                return local
            sql = await self._substitute(sql, tokens, spans)
        result = await self.backend.execute(sql)
        self.in_transaction = result.in_transaction
        return result

    async def _local_select(
        self, sql: str, tokens: list[Token], spans: list[tuple[int, int]]
    ) -> Result | None:
        limit = None
        if len(tokens) > 3 and tokens[-2].upper == "LIMIT" and tokens[-1].kind == "num":
            limit, tokens = int(tokens[-1].text), tokens[:-2]  # SELECT @@version_comment LIMIT 1
        if tokens[0].upper != "SELECT" or any(
            t.kind == "word" and t.upper in CLAUSES for t in top_level(tokens)
        ):
            return None
        starts = dict(spans)
        columns: list[Column] = []
        row: list[bytes | None] = []
        pos = 1
        for item in split_top_level(tokens[1:]):
            if not item:
                raise UdfError(1064, syntax_error(sql), "42000")
            i = pos
            pos += len(item) + 1
            j = starts.get(i)
            if j is None:
                return None
            rest = tokens[j + 1 : i + len(item)]
            if rest and rest[0].upper == "AS":
                rest = rest[1:]
            if len(rest) > 1 or (rest and rest[0].kind not in ("word", "quoted", "str")):
                return None
            name = column_name(rest[0]) if rest else sql[tokens[i].start : tokens[j].end]
            value = await self._evaluate(tokens, i, j)
            columns.append(column_for(name, value, tokens[i]))
            row.append(encode_value(value))
        return Result(columns=columns, rows=[row] if limit != 0 else [])

    async def substitute(self, sql: str) -> str:
        """``sql`` with audit functions and owned variables replaced by their values."""
        tokens = tokenize(sql)
        spans = local_spans(tokens)
        return await self._substitute(sql, tokens, spans) if spans else sql

    async def _substitute(self, sql: str, tokens: list[Token], spans: list[tuple[int, int]]) -> str:
        """Replace spans by literals; a bare SELECT item keeps its name through an alias."""
        bare = bare_select_items(tokens)
        out: list[str] = []
        last = 0
        for i, j in spans:
            value = await self._evaluate(tokens, i, j)
            out.append(sql[last : tokens[i].start])
            out.append(literal(value))
            if (i, j) in bare:
                name = sql[tokens[i].start : tokens[j].end].replace("`", "``")
                out.append(f" AS `{name}`")
            last = tokens[j].end
        out.append(sql[last:])
        return "".join(out)

    async def _evaluate(self, tokens: list[Token], i: int, j: int) -> bytes | str | int | None:
        tok = tokens[i]
        if tok.kind == "sysvar":
            scope, name = sysvar_name(tok.text)
            return functions.sysvar(self, scope, name)
        args: list[str | None] = []
        inner = tokens[i + 2 : j]
        if inner:
            for part in split_top_level(inner):
                args.append(await self._argument(part))
        name = tok.text.lower()
        if name in functions.READ_FUNCTIONS or name == "audit_log_rotate":
            # Indexing a backlog or copying 4 MB must not stall the other sessions' loop.
            return await asyncio.to_thread(functions.call, self, name, args)
        return functions.call(self, name, args)

    async def _argument(self, part: list[Token]) -> str | None:
        if len(part) == 1 and part[0].kind == "str":
            return unquote(part[0].text)
        if len(part) == 1 and part[0].upper == "NULL":
            return None
        if len(part) == 1 and part[0].kind == "num":
            return part[0].text
        spans = local_spans(part)
        if spans and spans[0] == (0, len(part) - 1):
            value = await self._evaluate(part, 0, len(part) - 1)
            return (
                value.decode()
                if isinstance(value, bytes)
                else None
                if value is None
                else str(value)
            )
        expr = "SELECT " + " ".join(t.text for t in part)  # e.g. @mark, JSON_SET(@mark, ...)
        if spans:
            expr = await self._substitute(expr, tokenize(expr), local_spans(tokenize(expr)))
        result = await self.backend.execute(expr)
        cell = result.rows[0][0] if result.rows else None
        return None if cell is None else cell.decode("utf-8", "replace")
