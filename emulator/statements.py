"""``SET``, ``SHOW`` and filter-table statements the emulator answers (or merges) itself."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from mysql_mimic.constants import KillKind
from sqlglot.errors import SqlglotError
from sqlglot.executor import execute as sqlglot_execute
from sqlglot.executor.table import Table

from emulator import functions
from emulator.errors import UdfError, Warning
from emulator.proxy import Column, Result
from emulator.sqltext import Token, split_top_level, sysvar_name, unquote
from emulator.variables import (
    BUFFER_MAX,
    BUFFER_MIN,
    ER_SPECIFIC_ACCESS_DENIED,
    check_set,
    integer_value,
    like,
)

if TYPE_CHECKING:
    from emulator.session import AuditSession

_SCOPES = {"GLOBAL": "GLOBAL", "SESSION": "SESSION", "LOCAL": "SESSION", "PERSIST": "GLOBAL"}
_ADMIN = {"SUPER", "ALL", "SYSTEM_VARIABLES_ADMIN"}


async def set_statement(session: AuditSession, sql: str, tokens: list[Token]) -> Result:
    """``SET``: audit variables are set here; every other assignment goes to the backend.

    Raises:
        UdfError: the server's error for a bad assignment (nothing is applied then).
    """
    others: list[str] = []
    actions: list[tuple[str, str, int | str]] = []
    warnings: list[Warning] = []
    for item in split_top_level(tokens[1:]):
        if not item:
            raise UdfError(1064, "You have an error in your SQL syntax near ','", "42000")
        scope, body = "SESSION", item
        if body[0].upper in _SCOPES and len(body) > 1 and body[1].text not in ("=", ":"):
            scope, body = _SCOPES[body[0].upper], body[1:]
        name = ""
        if body[0].kind == "sysvar":
            given, name = sysvar_name(body[0].text)
            scope = given or scope
        elif body[0].kind == "word":
            name = body[0].text.lower()
            if len(body) > 2 and body[1].text == "." and body[2].kind == "word":
                name, body = f"{name}.{body[2].text.lower()}", body[2:]  # audit_log.x
        if not name.startswith("audit_log"):
            others.append(sql[item[0].start : item[-1].end])
            continue
        value_tokens = body[1:]
        while value_tokens and value_tokens[0].text in (":", "="):
            value_tokens = value_tokens[1:]
        spec = check_set(name, scope, session.state.specs.get(name))
        if scope == "GLOBAL" and not (session.account and session.account.privileges & _ADMIN):
            raise UdfError(
                ER_SPECIFIC_ACCESS_DENIED,
                "Access denied; you need (at least one of) the SUPER or SYSTEM_VARIABLES_ADMIN "
                "privilege(s) for this operation",
                "42000",
            )
        raw = _value(value_tokens)
        if spec.integer:
            if raw == "DEFAULT":
                raw = session.state.default(name)
            low, high = (
                (BUFFER_MIN, BUFFER_MAX) if name.endswith("read_buffer_size") else (0, 2**63 - 1)
            )
            value, more = integer_value(name, raw if isinstance(raw, int) else None, low, high)
            warnings += more
            actions.append((scope, name, value))
        else:
            actions.append((scope, name, str(raw).upper()))
    result = Result()
    if others and session.backend.dsn is not None:
        rest = mysql8_collations("SET " + ", ".join(others))
        rest = await session.substitute(rest)
        result = await session.backend.execute(rest)
    # Without a backend, session settings (SET NAMES, autocommit, time_zone ...) are accepted
    # and ignored: clients send them while connecting.
    for scope, name, new in actions:
        if scope == "SESSION" and name == session.state.buffer_var:
            session.session_buffer = int(new)
        else:
            session.state.set_global(name, new)
    result.warnings = warnings + result.warnings
    return result


_MYSQL8_COLLATION = re.compile(r"\butf8mb4_0900_(?:ai_ci|as_ci|as_cs|bin)\b", re.IGNORECASE)


def mysql8_collations(statement: str) -> str:
    """MySQL 8's ``utf8mb4_0900_*`` collations, which a MariaDB backend does not know.

    Stock MySQL 8 clients (mysql-connector-python 9.x by default) send ``SET NAMES utf8mb4
    COLLATE utf8mb4_0900_ai_ci`` while connecting; a real server accepts it, so the emulator
    must too. The nearest MariaDB collation stands in: Unicode 5.2 rules, or binary.
    """

    def nearest(match: re.Match[str]) -> str:
        return (
            "utf8mb4_bin"
            if match[0].lower().endswith(("_bin", "_cs"))
            else "utf8mb4_unicode_520_ci"
        )

    return _MYSQL8_COLLATION.sub(nearest, statement)


def _value(tokens: list[Token]) -> int | str | None:
    if len(tokens) == 2 and tokens[0].text == "-" and tokens[1].kind == "num":
        return -int(tokens[1].text) if tokens[1].text.isdigit() else None
    if len(tokens) != 1:
        return None
    tok = tokens[0]
    if tok.kind == "num":
        return int(tok.text) if tok.text.isdigit() else None
    if tok.kind == "str":
        return unquote(tok.text)
    if tok.kind == "word":
        return tok.upper
    return None


async def show_statement(session: AuditSession, sql: str, tokens: list[Token]) -> Result | None:
    """``SHOW WARNINGS/ERRORS/COUNT(*) WARNINGS/VARIABLES``; None for other SHOWs (proxied)."""
    words = [t.upper for t in tokens]
    rest = [w for w in words[1:] if w not in ("GLOBAL", "SESSION", "LOCAL")]
    if rest[:1] in (["WARNINGS"], ["ERRORS"]):
        cols = [
            Column("Level", length=28),
            Column("Code", type=3, charset=63),
            Column("Message", length=2048),
        ]
        diag: list[list[bytes | None]] = [
            [w.level.encode(), str(w.code).encode(), w.message.encode()]
            for w in session.warnings
            if rest[0] == "WARNINGS" or w.level == "Error"
        ]
        return Result(columns=cols, rows=diag)
    if rest[:1] == ["COUNT"] and ("WARNINGS" in rest or "ERRORS" in rest):
        which = "warning_count" if "WARNINGS" in rest else "error_count"
        count = functions.sysvar(session, None, which)
        return Result(
            columns=[Column(f"@@session.{which}", type=8, charset=63)],
            rows=[[str(count).encode()]],
        )
    if rest[:1] != ["VARIABLES"]:
        return None
    return await _show_variables(session, sql, tokens, words)


async def _show_variables(
    session: AuditSession, sql: str, tokens: list[Token], words: list[str]
) -> Result:
    """Our variables merged into the backend's rows (ours win), sorted by name."""
    scope = "GLOBAL" if "GLOBAL" in words[:2] else None
    own: dict[str, str] = {}
    for name in [*session.state.specs, "version", "version_comment", "server_uuid"]:
        try:
            value = functions.sysvar(session, scope, name)
        except UdfError:
            continue
        own[name] = "" if value is None else str(value)
    pattern, text = None, ""
    if "LIKE" in words and words.index("LIKE") + 1 < len(tokens):
        text = unquote(tokens[words.index("LIKE") + 1].text)
        pattern = like(text)
    where = "WHERE" in words
    merged = {} if where else {k: v for k, v in own.items() if pattern is None or pattern.match(k)}
    if session.backend.dsn is not None and not text.lower().startswith("audit_log"):
        result = await session.backend.execute(sql)
        for raw_name, raw_value in result.rows:
            key = (raw_name or b"").decode()
            if where or key not in own:
                merged[key] = own.get(key, (raw_value or b"").decode("utf-8", "replace"))
    return Result(
        columns=[Column("Variable_name", length=256), Column("Value", length=4096)],
        rows=[[k.encode(), v.encode()] for k, v in sorted(merged.items())],
    )


def filter_tables_query(session: AuditSession, sql: str) -> Result:
    """Answer a query over ``mysql.audit_log_filter`` / ``mysql.audit_log_user`` locally.

    Raises:
        UdfError: 1142 without AUDIT_ADMIN; 1064 when sqlglot cannot run the query.
    """
    account = session.account
    if account is None or not account.is_audit_admin:
        raise UdfError(
            1142,
            f"SELECT command denied to user '{account.name if account else ''}'@'%' for table "
            "'audit_log_filter'",
            "42000",
        )
    filters = session.state.filters
    try:
        table = sqlglot_execute(
            sql,
            dialect="mysql",
            tables=_tables(filters.rows_filter(), filters.rows_user()),
        )
    except (SqlglotError, KeyError, ValueError) as exc:
        raise UdfError(1064, f"emulator cannot run this query on {exc}", "42000") from exc
    return Result(
        columns=[Column(str(c)) for c in table.columns],
        rows=[[None if v is None else str(v).encode() for v in row] for row in table.rows],
    )


def _tables(filters: list[dict[str, Any]], users: list[dict[str, Any]]) -> dict[str, Any]:
    """The two tables for sqlglot's executor, with their columns even when empty."""
    out: dict[str, Any] = {}
    for name, rows, cols in (
        ("audit_log_filter", filters, ("NAME", "FILTER")),
        ("audit_log_user", users, ("USER", "HOST", "FILTERNAME")),
    ):
        table = Table(cols)
        for row in rows:
            table.append(tuple(row[c] for c in cols))
        out[name] = table
    return {"mysql": out}


async def kill_statement(session: AuditSession, tokens: list[Token]) -> Result:
    """``KILL [CONNECTION | QUERY] id`` of the emulator's own connections (never the backend's).

    Raises:
        UdfError: 1094 unknown id, 1095 another account's connection without SUPER.
    """
    words = [t for t in tokens[1:] if t.upper not in ("CONNECTION", "QUERY")]
    kind = KillKind.QUERY if any(t.upper == "QUERY" for t in tokens[1:2]) else KillKind.CONNECTION
    if len(words) == 3 and words[0].upper == "CONNECTION_ID":
        target = session.connection_id
    elif len(words) == 1 and words[0].kind == "num" and words[0].text.isdigit():
        target = int(words[0].text)
    else:
        raise UdfError(1064, "You have an error in your SQL syntax near 'KILL'", "42000")
    victim = session.control.get(target) if session.control else None
    if victim is None:
        raise UdfError(1094, f"Unknown thread id: {target}")
    mine = victim.session.account == session.account
    if not mine and not (session.account and session.account.privileges & {"SUPER", "ALL"}):
        raise UdfError(1095, f"You are not owner of thread {target}")
    await session.control.kill(target, kind)
    return Result()
