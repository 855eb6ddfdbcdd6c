"""The audit functions and the system variables the emulator answers itself.

Results of the audit functions are **binary strings**, as UDF results are: clients get
``bytes`` (decode them as UTF-8). Every audit function needs ``AUDIT_ADMIN`` (or ``SUPER``);
without it the call fails as a UDF whose init function refuses (error 1123).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from emulator import selfaudit
from emulator.errors import UdfError, udf_failed
from emulator.filters import filter_function
from emulator.variables import check_read

if TYPE_CHECKING:
    from emulator.session import AuditSession

ER_CANT_INITIALIZE_UDF = 1123
READ_FUNCTIONS = {"audit_log_read", "audit_log_read_bookmark"}
FILTER_FUNCTIONS = {
    "audit_log_filter_set_filter",
    "audit_log_filter_set_user",
    "audit_log_filter_remove_filter",
    "audit_log_filter_remove_user",
    "audit_log_filter_flush",
}
AUDIT_FUNCTIONS = READ_FUNCTIONS | FILTER_FUNCTIONS | {"audit_log_rotate"}
#: functions whose value belongs to the emulator, not to the backend
SESSION_FUNCTIONS = {
    "connection_id",
    "version",
    "current_user",
    "user",
    "session_user",
    "audit_api_message_emit_udf",
}
OWN_SYSVARS = {"version", "version_comment", "server_uuid", "warning_count", "error_count"}


def call(session: AuditSession, name: str, args: list[str | None]) -> bytes | str | int | None:
    """Evaluate one function call with already-evaluated arguments.

    Raises:
        UdfError: the server's error for this call.
    """
    state = session.state
    if name == "audit_api_message_emit_udf":
        return selfaudit.message(session, args)
    if name in SESSION_FUNCTIONS:
        if args:
            raise UdfError(
                1582, f"Incorrect parameter count in the call to native function '{name}'", "42000"
            )
        if name == "connection_id":
            return session.connection_id
        if name == "version":
            return state.version
        account = session.account
        host = session.client_host if name in ("user", "session_user") else "%"
        return f"{account.name if account else ''}@{host}"
    if session.account is None or not session.account.is_audit_admin:
        user = session.account.name if session.account else ""
        raise UdfError(
            ER_CANT_INITIALIZE_UDF,
            f"Can't initialize function '{name}'; Request ignored for '{user}'@'%'. "
            "SUPER or AUDIT_ADMIN needed to perform operation",
        )
    if name in READ_FUNCTIONS and state.globals[state.format_var] not in state.readable_formats:
        raise udf_failed(
            f"Reading the audit log requires {state.format_var}="
            f"{' or '.join(state.readable_formats)}.",
            name,
        )
    if name in FILTER_FUNCTIONS:
        return filter_function(state.filters, name, args).encode()
    with state.index_lock:  # one reader of the shared index at a time
        return _read_function(session, name, args)


def _read_function(session: AuditSession, name: str, args: list[str | None]) -> bytes | None:
    state = session.state
    if name == "audit_log_read":
        if len(args) > 1:
            raise UdfError(
                ER_CANT_INITIALIZE_UDF, f"Can't initialize function '{name}'; Wrong argument list."
            )
        page = session.read_seq.read(args[0] if args else None, session.buffer_size())
        session.warnings.extend(page.warnings)
        return page.payload
    if name == "audit_log_read_bookmark":
        if args:
            raise UdfError(
                ER_CANT_INITIALIZE_UDF, f"Can't initialize function '{name}'; Wrong argument list."
            )
        files = state.index.refresh()
        for f in reversed(files):
            if f.count:
                return f'{{ "timestamp": "{f.ts[-1]}", "id": {f.ids[-1]} }}'.encode()
        return None
    rotated = state.writer.rotate()
    return rotated.name.encode() if rotated else b""


def sysvar(session: AuditSession, scope: str | None, name: str) -> str | int | None:
    """The value of ``@@[scope.]name`` if the emulator owns it, else raise ``KeyError``.

    Raises:
        KeyError: not the emulator's variable (the backend answers it).
        UdfError: wrong scope (1238) or a flavor's unknown name (1193).
    """
    state = session.state
    if name in OWN_SYSVARS:
        if name == "version":
            return state.version
        if name == "version_comment":
            return state.version_comment
        if name == "server_uuid":
            return state.server_uuid
        if name == "warning_count":
            return len(session.warnings)
        return sum(1 for w in session.warnings if w.level == "Error")
    if not name.startswith("audit_log"):
        raise KeyError(name)
    spec = state.specs.get(name)
    check_read(name, scope, spec)
    if name == state.prefix + "filter_id" and state.flavor == "oracle":
        return session.filter_id
    if name == state.buffer_var and scope != "GLOBAL" and state.flavor == "oracle":
        return session.session_buffer
    return state.globals[name]
