"""What kind of audit log the source server has, and whether it is safe to read it.

Three checks run on every (re)connect, before the first read:

1. **Flavor** from ``SHOW VARIABLES LIKE 'audit_log%'``: Oracle's plugin
   (``audit_log_read_buffer_size``, session scope), MySQL 9.x's component (``audit_log.*``),
   Percona's plugin (``audit_log_filter_read_buffer_size``, global only) or component
   (``audit_log_filter.*``). Percona cannot re-position an open read sequence (close it first)
   and answers a bookmark that does not match an event exactly with ``[null]``.
2. **Format**: the reading functions only work on a JSON log: ``JSON`` on Oracle; ``JSON`` or
   ``JSONL`` on Percona (JSONL from 8.4.10-10, the 9.x default). The XML formats (``NEW``,
   ``OLD``) are refused, naming the variable to change. Both Percona layouts reach us through
   the same page text (Percona's reader re-encodes every event), so nothing else depends on it.
3. **Self-audit guard**: when the filter assigned to our own account logs anything, every read
   is itself audited and the producer chases its own tail forever. Refuse to start unless
   ``--allow-self-audit``. Trap: the assignment is looked up for ``CURRENT_USER()`` (the account
   that authenticated, e.g. ``archiver@%``), falling back to the default account ``%``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from auditstream.errors import SourceConfigError, SourceUnavailable
from auditstream.mysql import Connection, Error, is_connection_error

log = logging.getLogger(__name__)


PERCONA_FORMATS = ("JSON", "JSONL")
XML_FORMATS = ("NEW", "OLD", "XML")


@dataclass(frozen=True)
class Flavor:
    """The variables one audit log implementation uses."""

    name: str
    format_var: str
    buffer_var: str
    session_buffer: bool
    percona: bool
    formats: tuple[str, ...] = ("JSON",)

    def buffer_statement(self) -> str:
        """``SET`` for the read buffer (variable names are constants of this module)."""
        scope = "SESSION" if self.session_buffer else "GLOBAL"
        return f"SET {scope} {self.buffer_var} = %s"


FLAVORS = (
    Flavor("oracle", "audit_log_format", "audit_log_read_buffer_size", True, False),
    Flavor("oracle-component", "audit_log.format", "audit_log.read_buffer_size", True, False),
    Flavor(
        "percona",
        "audit_log_filter_format",
        "audit_log_filter_read_buffer_size",
        False,
        True,
        PERCONA_FORMATS,
    ),
    Flavor(
        "percona-component",
        "audit_log_filter.format",
        "audit_log_filter.read_buffer_size",
        False,
        True,
        PERCONA_FORMATS,
    ),
)


def variables(conn: Connection) -> dict[str, str]:
    """``SHOW VARIABLES LIKE 'audit_log%'`` as a dict (names lower-cased)."""
    cur = conn.cursor()
    cur.execute("SHOW VARIABLES LIKE 'audit_log%'")
    rows = cur.fetchall()
    cur.close()
    return {str(name).lower(): text_of(value) for name, value in rows}


def detect(found: dict[str, str], **context: Any) -> Flavor:
    """The flavor whose read-buffer variable the server has; its log must be one it can read.

    Raises:
        SourceConfigError: no audit log plugin/component, or its format is not readable
            (XML, or a format this flavor does not have).
    """
    for flavor in FLAVORS:
        if flavor.buffer_var in found:
            fmt = found.get(flavor.format_var, "")
            if fmt.upper() not in flavor.formats:
                raise SourceConfigError(_format_refusal(flavor, fmt), flavor=flavor.name, **context)
            return flavor
    raise SourceConfigError(
        "no audit log on this server (no audit_log_read_buffer_size, audit_log.*, "
        "audit_log_filter_* variable): install MySQL Enterprise Audit or Percona audit_log_filter",
        **context,
    )


def _format_refusal(flavor: Flavor, fmt: str) -> str:
    kind = " (XML)" if fmt.upper() in XML_FORMATS else ""
    wanted = " or ".join(f"{flavor.format_var}={f}" for f in reversed(flavor.formats))
    text = f"the audit log format is {fmt or 'unknown'!r}{kind}; audit_log_read() needs {wanted}"
    if flavor.percona:
        file_var = flavor.format_var.replace("format", "file")
        text += (
            f" (set it at startup and rename {file_var}, e.g. audit_filter.jsonl, so files "
            "of the old format keep their own name)"
        )
    return text


def set_buffer(conn: Connection, flavor: Flavor, size: int, **context: Any) -> int:
    """Set the read buffer to ``size`` bytes; return the value the server applied.

    Percona's variable is global only and needs SYSTEM_VARIABLES_ADMIN: without it the current
    value is kept and a warning logged (each call then returns fewer events, nothing is lost).
    """
    cur = conn.cursor()
    try:
        cur.execute(flavor.buffer_statement(), (size,))
    except Error as exc:
        log.warning(
            "cannot set the read buffer; keeping the server's value",
            extra={"ctx": {"variable": flavor.buffer_var, "error": str(exc), **context}},
        )
    finally:
        cur.close()
    applied = int(variables(conn).get(flavor.buffer_var, "0") or 0)
    if applied != size:
        log.warning(
            "read buffer differs from the requested size",
            extra={"ctx": {"requested": size, "applied": applied, **context}},
        )
    return applied


def guard_self_audit(conn: Connection, *, allow: bool, **context: Any) -> str | None:
    """Refuse to read when our own account's filter logs; return the filter name found.

    Raises:
        SourceConfigError: the assigned filter logs (or cannot be read) and ``allow`` is False.
    """
    try:
        account, users, filters = _filter_tables(conn)
    except Error as exc:
        if is_connection_error(exc):
            # The session died while checking (a source restart): retry, do not give up.
            raise SourceUnavailable(
                f"lost the source during the self-audit check: {exc}", **context
            ) from exc
        if allow:
            return None
        raise SourceConfigError(
            "cannot read mysql.audit_log_user / mysql.audit_log_filter to check that the "
            "archiver does not audit itself; grant SELECT on them (sql/source/grants.sql) or "
            "pass --allow-self-audit",
            error=str(exc),
            **context,
        ) from exc
    user, _, host = account.rpartition("@")
    assigned = users.get((user, host)) or users.get(("%", "")) or users.get(("%", "%"))
    if assigned is None:
        return None  # rule-based filtering logs nothing until a filter is assigned
    if logs_nothing(filters.get(assigned)) or allow:
        return assigned
    raise SourceConfigError(
        f"the audit filter {assigned!r} assigned to {account} logs the archiver's own "
        "statements: it would read its own reads forever. Assign a log_nothing filter "
        "(sql/source/filters.sql: audit_log_filter_set_user(...,'log_nothing')) or pass "
        "--allow-self-audit",
        account=account,
        filter=assigned,
        **context,
    )


def logs_nothing(definition: str | None) -> bool:
    """True only for a filter that certainly logs nothing (``{"filter": {"log": false}}``)."""
    if definition is None:
        return False
    try:
        spec = json.loads(definition).get("filter")
    except (ValueError, AttributeError):
        return False
    return isinstance(spec, dict) and spec.get("log") is False and "class" not in spec


def _filter_tables(
    conn: Connection,
) -> tuple[str, dict[tuple[str, str], str], dict[str, str]]:
    cur = conn.cursor(dictionary=True)
    try:
        cur.execute("SELECT CURRENT_USER() AS account")
        account = text_of(cur.fetchall()[0]["account"])  # type: ignore[call-overload]
        cur.execute("SELECT * FROM mysql.audit_log_user")
        users = {}
        for row in cur.fetchall():
            low = {str(k).lower(): text_of(v) for k, v in row.items()}  # type: ignore[union-attr]
            user = low.get("user", low.get("username", ""))
            host = low.get("host", low.get("userhost", ""))
            users[(user, host)] = low.get("filtername", "")
        cur.execute("SELECT * FROM mysql.audit_log_filter")
        filters = {}
        for row in cur.fetchall():
            low = {str(k).lower(): text_of(v) for k, v in row.items()}  # type: ignore[union-attr]
            filters[low.get("name", "")] = low.get("filter", "")
    finally:
        cur.close()
    return account, users, filters


def text_of(value: object) -> str:
    """A column value as text (the connector may hand back bytes)."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return "" if value is None else str(value)
