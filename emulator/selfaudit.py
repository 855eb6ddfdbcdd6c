"""Audit events for the emulator's own sessions, written when the session's filter says so.

A session of an account with a logging filter (e.g. ``log_all`` on ``%``) produces, like the
server: ``connection/connect``, per statement ``table_access`` events (read/insert/update/delete,
found from the statement's text) followed by ``general/status`` with the query and status, and
``connection/disconnect``. An archiver without ``log_nothing`` therefore audits itself.

Trap: table names are found by a light scan of the statement (``FROM``/``JOIN``/``INTO``/
``UPDATE``), not by the server's parser; exotic statements may report fewer tables.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from emulator.errors import UdfError
from emulator.filters import logs
from emulator.sqltext import Token, sql_command

if TYPE_CHECKING:
    from emulator.session import AuditSession

_SECRET = re.compile(
    r"""(IDENTIFIED\s+(?:WITH\s+\S+\s+)?BY\s+)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""", re.I
)
_ACCESS = {
    "select": "read",
    "insert": "insert",
    "replace": "insert",
    "update": "update",
    "delete": "delete",
}


def mask(sql: str) -> str:
    """Mask passwords the way the server does (``IDENTIFIED BY <secret>``)."""
    return _SECRET.sub(r"\1<secret>", sql)


def _base(session: AuditSession, klass: str, event: str) -> dict[str, Any]:
    name = session.account.name if session.account else ""
    return {
        "class": klass,
        "event": event,
        "connection_id": session.connection_id,
        "account": {"user": name, "host": session.account.host if session.account else ""},
        "login": {"user": name, "os": "", "ip": session.client_host, "proxy": ""},
    }


def message(session: AuditSession, args: list[str | None]) -> str:
    """``audit_api_message_emit_udf(component, producer, message[, key, value]...)``.

    Writes a ``message``/``user`` event when the session's filter logs it; returns ``OK``.

    Raises:
        UdfError: fewer than three arguments or an odd key/value list (1123).
    """
    if len(args) < 3 or len(args) % 2 == 0:
        raise UdfError(
            1123, "Can't initialize function 'audit_api_message_emit_udf'; Wrong argument list."
        )
    text = [a or "" for a in args]
    pairs = dict(zip(text[3::2], text[4::2], strict=True))
    data = {"component": text[0], "producer": text[1], "message": text[2], "map": pairs}
    _write(session, "message", "user", message_data=data)
    return "OK"


def _write(session: AuditSession, klass: str, event: str, **data: Any) -> None:
    if not logs(session.rule, klass, event):
        return
    body = _base(session, klass, event)
    body.update(data)
    session.state.writer.write(body)


def connect(session: AuditSession, status: int, event: str = "connect") -> None:
    """``connection/connect`` (or ``change_user``) with the client's attributes."""
    _write(
        session,
        "connection",
        event,
        connection_data={
            "connection_type": session.connection_type,
            "status": status,
            "db": session.database or "",
            "connection_attributes": dict(session.connect_attrs),
        },
    )


def disconnect(session: AuditSession) -> None:
    """``connection/disconnect``."""
    _write(
        session,
        "connection",
        "disconnect",
        connection_data={"connection_type": session.connection_type},
    )


def statement(
    session: AuditSession, sql: str, tokens: list[Token], status: int, command: str
) -> None:
    """``table_access`` events (successful DML only) and then ``general/status``."""
    if session.account is None or session.rule is None:
        return
    cmd = sql_command(tokens) if command == "Query" else "change_db"
    query = mask(sql)
    if status == 0 and cmd in _ACCESS:
        for db, table in tables(tokens, session.database or ""):
            access = _ACCESS[cmd]
            if cmd != "select" and (db, table) != tables(tokens, session.database or "")[0]:
                access = "read"
            _write(
                session,
                "table_access",
                access,
                table_access_data={"db": db, "table": table, "query": query, "sql_command": cmd},
            )
    general: dict[str, Any] = {
        "command": command,
        "sql_command": cmd,
        "query": query,
        "status": status,
    }
    if command != "Query":
        general = {"command": command, "sql_command": "error", "status": status}
    _write(session, "general", "status", general_data=general)


def tables(tokens: list[Token], default_db: str) -> list[tuple[str, str]]:
    """Tables a statement names after ``FROM``/``JOIN``/``INTO``/``UPDATE`` (first = target)."""
    out: list[tuple[str, str]] = []
    for i, tok in enumerate(tokens):
        if tok.kind != "word" or tok.upper not in ("FROM", "JOIN", "INTO", "UPDATE"):
            continue
        j = i + 1
        if j < len(tokens) and tokens[j].kind in ("word", "quoted") and tokens[j].upper != "SELECT":
            name = tokens[j].text.strip("`")
            if j + 2 < len(tokens) and tokens[j + 1].text == ".":
                ref = (name, tokens[j + 2].text.strip("`"))
            else:
                ref = (default_db, name)
            if ref not in out and tokens[j].text.lower() not in ("dual",):
                out.append(ref)
    return out


def failed_connect(session: AuditSession, user: str, host: str, attrs: dict[str, str]) -> None:
    """A refused login: ``connection/connect`` with status 1045 under the default filter."""
    _, rule = session.state.filters.for_account("\0none", "%")
    if not logs(rule, "connection", "connect"):
        return
    session.state.writer.write(
        {
            "class": "connection",
            "event": "connect",
            "connection_id": 0,
            "account": {"user": "", "host": ""},
            "login": {"user": user, "os": "", "ip": host, "proxy": ""},
            "connection_data": {
                "connection_type": "tcp/ip",
                "status": 1045,
                "db": session.database or "",
                "connection_attributes": attrs,
            },
        }
    )
