"""An audit event, as ``audit_log_read`` returns it, mapped to the flat Avro record.

The mapping never drops anything: ``raw`` carries the complete event text as received, and the
flat fields are a typed convenience copy. Unknown classes, events and keys are accepted; only
what identifies an event (``timestamp``, ``id``, ``class``, ``event``) is required.

Trap: key order inside an event is not guaranteed and values may be truncated by the server,
so never re-serialise ``raw`` from the parsed dict: keep the text the server sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"
_SHAPE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
_UNSIGNED_64 = 2**64


class InvalidEventError(ValueError):
    """The event lacks what identifies it, or a well-known field has the wrong type."""


def parse_timestamp(text: object) -> datetime:
    """``"YYYY-MM-DD hh:mm:ss"`` (UTC, as the server writes it) → an aware datetime.

    Raises:
        InvalidEventError: not a string in that format.
    """
    if not isinstance(text, str):
        raise InvalidEventError(f"timestamp must be a string, got {type(text).__name__}")
    return _parse_timestamp(text)


@lru_cache(maxsize=8192)
def _parse_timestamp(text: str) -> datetime:
    # Cached: events come in bursts within one second, and strptime costs ~25 µs an event.
    # fromisoformat is fast but lenient, so the exact shape is checked first.
    if len(text) != 19 or text[10] != " " or not _SHAPE.fullmatch(text):
        raise InvalidEventError(f"timestamp {text!r} is not YYYY-MM-DD hh:mm:ss")
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError as exc:
        raise InvalidEventError(f"timestamp {text!r} is not YYYY-MM-DD hh:mm:ss") from exc


def format_timestamp(value: datetime) -> str:
    """An aware datetime → the server's ``"YYYY-MM-DD hh:mm:ss"`` in UTC."""
    return value.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def event_id(event: Mapping[str, Any]) -> int:
    """The event's ``id``: an unsigned integer (not a bool, not a string).

    Raises:
        InvalidEventError: missing or of the wrong type.
    """
    value = event.get("id")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _UNSIGNED_64:
        raise InvalidEventError(f"id must be an unsigned integer, got {value!r}")
    return value


def to_record(
    server_uuid: str,
    raw: str,
    event: Mapping[str, Any],
    *,
    chain: str | None = None,
    chain_seq: int | None = None,
) -> dict[str, Any]:
    """Map one event to an ``AuditEvent`` record.

    Args:
        server_uuid: the audited server's ``@@server_uuid``.
        raw: the event's JSON text exactly as it appeared in the page.
        event: ``raw`` parsed.
        chain: the event's link hash (hex), from ``auditstream.chain.ChainState``; None when the
            producer does not chain.
        chain_seq: the link's number in the chain.

    Raises:
        InvalidEventError: the event cannot be identified (no valid timestamp/id/class/event).
    """
    if not isinstance(event, Mapping):
        raise InvalidEventError(f"an event must be a JSON object, got {type(event).__name__}")
    ts = parse_timestamp(event.get("timestamp"))
    ident = event_id(event)
    cls, name = event.get("class"), event.get("event")
    if not isinstance(cls, str) or not isinstance(name, str):
        raise InvalidEventError("class and event must be strings")
    account = _obj(event, "account")
    login = _obj(event, "login")
    conn = _obj(event, "connection_data")
    general = _obj(event, "general_data")
    table = _obj(event, "table_access_data")
    startup = _obj(event, "startup_data")
    shutdown = _obj(event, "shutdown_data")
    stats = _obj(event, "query_statistics")
    message = _obj(event, "message_data")
    sql_source = general or table
    return {
        "server_uuid": server_uuid,
        "timestamp": ts,
        "id": ident,
        "class": cls,
        "event": name,
        "connection_id": _int(event.get("connection_id")),
        "account_user": _str(account.get("user")),
        "account_host": _str(account.get("host")),
        "login_user": _str(login.get("user")),
        "login_os": _str(login.get("os")),
        "login_ip": _str(login.get("ip")),
        "login_proxy": _str(login.get("proxy")),
        "connection_type": _str(conn.get("connection_type")),
        "connection_status": _int(conn.get("status")),
        "connection_db": _str(conn.get("db")),
        "connection_attributes": _str_map(conn.get("connection_attributes")),
        "command": _str(general.get("command")),
        "sql_command": _str(sql_source.get("sql_command")),
        "query": _str(sql_source.get("query")),
        "status": _int(general.get("status")),
        "table_db": _str(table.get("db")),
        "table_name": _str(table.get("table")),
        "server_id": _int(startup.get("server_id", shutdown.get("server_id"))),
        "os_version": _str(startup.get("os_version")),
        "mysql_version": _str(startup.get("mysql_version")),
        "startup_args": _str_list(startup.get("args")),
        "query_time": _float(stats.get("query_time")),
        "rows_sent": _int(stats.get("rows_sent")),
        "rows_examined": _int(stats.get("rows_examined")),
        "bytes_received": _int(stats.get("bytes_received")),
        "bytes_sent": _int(stats.get("bytes_sent")),
        "message_component": _str(message.get("component")),
        "message_producer": _str(message.get("producer")),
        "message": _str(message.get("message")),
        "message_map": _str_map(message.get("map")),
        "unix_time": _int(event.get("time")),
        "raw": raw,
        "chain": chain,
        "chain_seq": chain_seq,
    }


# The flat fields are a convenience: a value of an unexpected type is left out of them (it is
# still in `raw`), never a reason to reject the event.


def _obj(event: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = event.get(key)
    return value if isinstance(value, Mapping) else {}


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if -(2**63) <= value < 2**63 else None


def _float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _str_map(value: object) -> dict[str, str] | None:
    if not isinstance(value, Mapping):
        return None
    return {str(k): v if isinstance(v, str) else _json_text(v) for k, v in value.items()}


def _str_list(value: object) -> list[str] | None:
    if not isinstance(value, list):
        return None
    return [v if isinstance(v, str) else _json_text(v) for v in value]


def _json_text(value: object) -> str:
    import orjson

    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return str(value)
