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
from emulator.proxy import BINARY_CHARSET, Backend, Column, Result
from emulator.reader import ReadSequence, UdfError, Warning
from emulator.sqltext import (
    SqlSyntaxError,
    Token,
    closing_paren,
    quote,
    split_top_level,
    sysvar_name,
    tokenize,
    unquote,
)
from emulator.statements import filter_tables_query, set_statement, show_statement

if TYPE_CHECKING:
    from emulator.state import ServerState

_CLAUSES = {"FROM", "WHERE", "GROUP", "HAVING", "ORDER", "UNION", "INTO", "WINDOW", "FOR", "LIMIT"}
_LOCAL_FUNCS = functions.AUDIT_FUNCTIONS | functions.SESSION_FUNCTIONS


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
        self.read_seq = ReadSequence(state.index, state.flavor)
        buffer = state.globals[state.buffer_var]
        self.session_buffer = int(buffer)
        self.filter_id: int = 0
        self.rule: Any = None
        self.warnings: list[Warning] = []
        self.backend = Backend(state.config.backend_dsn)
        self.in_transaction = False
        self.closed = False

    def buffer_size(self) -> int:
        """The read buffer that applies to this session's ``audit_log_read`` calls."""
        if self.state.flavor == "percona":
            return int(self.state.globals[self.state.buffer_var])
        return self.session_buffer

    # ----------------------------------------------------------------- lifecycle

    def start(self, account: Account, connection_id: int, host: str, attrs: dict[str, str]) -> None:
        """Called after a successful login: fixes the session's filter and logs ``connect``."""
        self.account, self.username = account, account.name
        self.connection_id, self.client_host, self.connect_attrs = connection_id, host, attrs
        self.filter_id, self.rule = self.state.filters.for_account(account.name, account.host)
        self.backend.database = self.database
        selfaudit.connect(self, status=0)

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
        try:
            tokens = tokenize(sql)
        except SqlSyntaxError:
            tokens = []
        reads_diagnostics = _reads_diagnostics(tokens)
        status = 0
        try:
            if not reads_diagnostics:
                self.warnings = []
            result = await self._dispatch(sql, tokens)
        except UdfError as exc:
            status = exc.errno
            self.warnings = [Warning("Error", exc.errno, exc.message)]
            raise
        else:
            if not reads_diagnostics:
                self.warnings = result.warnings + self.warnings
            return result
        finally:
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
        if first == "USE" and len(tokens) >= 2:
            result = await self.backend.execute(sql)
            self.database = (
                unquote(tokens[1].text) if tokens[1].kind == "str" else tokens[1].text.strip("`")
            )
            self.backend.database = self.database
            return result
        if _mentions_filter_tables(tokens):
            return filter_tables_query(self, sql)
        spans = _local_spans(tokens)
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
        if tokens[0].upper != "SELECT" or any(
            t.kind == "word" and t.upper in _CLAUSES for t in _top_level(tokens)
        ):
            return None
        starts = dict(spans)
        columns: list[Column] = []
        row: list[bytes | None] = []
        pos = 1
        for item in split_top_level(tokens[1:]):
            if not item:
                raise UdfError(1064, _syntax_error(sql), "42000")
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
            name = _name(rest[0]) if rest else sql[tokens[i].start : tokens[j].end]
            value = await self._evaluate(tokens, i, j)
            columns.append(_column_for(name, value, tokens[i]))
            row.append(_encode(value))
        return Result(columns=columns, rows=[row])

    async def substitute(self, sql: str) -> str:
        """``sql`` with audit functions and owned variables replaced by their values."""
        tokens = tokenize(sql)
        spans = _local_spans(tokens)
        return await self._substitute(sql, tokens, spans) if spans else sql

    async def _substitute(self, sql: str, tokens: list[Token], spans: list[tuple[int, int]]) -> str:
        out: list[str] = []
        last = 0
        for i, j in spans:
            value = await self._evaluate(tokens, i, j)
            out.append(sql[last : tokens[i].start])
            out.append(_literal(value))
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
        spans = _local_spans(part)
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
            expr = await self._substitute(expr, tokenize(expr), _local_spans(tokenize(expr)))
        result = await self.backend.execute(expr)
        cell = result.rows[0][0] if result.rows else None
        return None if cell is None else cell.decode("utf-8", "replace")


def _reads_diagnostics(tokens: list[Token]) -> bool:
    words = [t.upper for t in tokens[:4]]
    if words[:1] == ["SHOW"] and ("WARNINGS" in words or "ERRORS" in words):
        return True
    return (
        len(tokens) == 2
        and words[0] == "SELECT"
        and tokens[1].kind == "sysvar"
        and sysvar_name(tokens[1].text)[1] in ("warning_count", "error_count")
    )


def _top_level(tokens: list[Token]) -> list[Token]:
    depth, out = 0, []
    for t in tokens:
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
        elif depth == 0:
            out.append(t)
    return out


def _local_spans(tokens: list[Token]) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        after_dot = i > 0 and tokens[i - 1].text == "."
        if (
            t.kind == "word"
            and not after_dot
            and t.text.lower() in _LOCAL_FUNCS
            and i + 1 < len(tokens)
            and tokens[i + 1].text == "("
        ):
            j = closing_paren(tokens, i + 1)
            if j < 0:
                break
            spans.append((i, j))
            i = j + 1
            continue
        if t.kind == "sysvar":
            name = sysvar_name(t.text)[1]
            if name in functions.OWN_SYSVARS or name.startswith("audit_log"):
                spans.append((i, i))
        i += 1
    return spans


def _mentions_filter_tables(tokens: list[Token]) -> bool:
    for i in range(len(tokens) - 2):
        if (
            tokens[i].text.strip("`").lower() == "mysql"
            and tokens[i + 1].text == "."
            and tokens[i + 2].text.strip("`").lower() in ("audit_log_filter", "audit_log_user")
        ):
            return True
    return False


def _name(tok: Token) -> str:
    if tok.kind == "str":
        return unquote(tok.text)
    return tok.text.strip("`").replace("``", "`")


def _column_for(name: str, value: Any, tok: Token) -> Column:
    if isinstance(value, bytes):
        big = tok.text.lower() == "audit_log_read"
        return Column(name, type=251 if big else 253, charset=BINARY_CHARSET, flags=128)
    if isinstance(value, int):
        return Column(name, type=8, charset=BINARY_CHARSET, flags=128 | 32768, length=21)
    return Column(name, type=253, charset=255)


def _encode(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    return quote(value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value))


def _syntax_error(sql: str) -> str:
    return (
        "You have an error in your SQL syntax; check the manual that corresponds to your "
        f"MySQL server version for the right syntax to use near '{sql[:80]}' at line 1"
    )
