"""The audit system variables of each flavor: values, scopes, ``SET`` rules and their errors.

Oracle: ``audit_log_read_buffer_size`` is Global and Session (a session starts with the global
value). Percona: ``audit_log_filter_read_buffer_size`` is Global only; the Oracle name is
unknown there (error 1193). Both: default 32768, range 32768..4194304, and an out-of-range value
is clamped with warning 1292, as MySQL does for integer variables.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from emulator.errors import UdfError, Warning

BUFFER_DEFAULT, BUFFER_MIN, BUFFER_MAX = 32768, 32768, 4194304
ER_UNKNOWN_SYSTEM_VARIABLE = 1193
ER_LOCAL_VARIABLE = 1228
ER_GLOBAL_VARIABLE = 1229
ER_WRONG_TYPE_FOR_VAR = 1232
ER_WRONG_VALUE_FOR_VAR = 1231
ER_INCORRECT_GLOBAL_LOCAL_VAR = 1238
ER_TRUNCATED_WRONG_VALUE = 1292
ER_SPECIFIC_ACCESS_DENIED = 1227


@dataclass(frozen=True)
class VarSpec:
    """One variable: scope (``global``, ``session`` or ``both``) and whether SET may change it."""

    scope: str
    dynamic: bool = False
    integer: bool = False


def prefix(flavor: str, component: bool = False) -> str:
    """The variables' common prefix.

    ``audit_log_`` / ``audit_log_filter_`` for the plugins, ``audit_log.`` /
    ``audit_log_filter.`` for the MySQL 9.x and Percona 8.4 components.
    """
    return ("audit_log_filter" if flavor == "percona" else "audit_log") + (
        "." if component else "_"
    )


def specs(flavor: str, component: bool = False) -> dict[str, VarSpec]:
    """The audit variables of ``flavor`` (names lower-case)."""
    p = prefix(flavor, component)
    out = {
        f"{p}buffer_size": VarSpec("global", integer=True),
        f"{p}compression": VarSpec("global"),
        f"{p}database": VarSpec("global"),
        f"{p}disable": VarSpec("global", dynamic=True),
        f"{p}encryption": VarSpec("global"),
        f"{p}file": VarSpec("global"),
        f"{p}format": VarSpec("global"),
        f"{p}format_unix_timestamp": VarSpec("global", dynamic=True),
        f"{p}max_size": VarSpec("global", dynamic=True, integer=True),
        f"{p}prune_seconds": VarSpec("global", dynamic=True, integer=True),
        f"{p}rotate_on_size": VarSpec("global", dynamic=True, integer=True),
        f"{p}strategy": VarSpec("global"),
    }
    if flavor == "percona":
        out[f"{p}read_buffer_size"] = VarSpec("global", dynamic=True, integer=True)
        out[f"{p}handler"] = VarSpec("global")
    else:
        out[f"{p}read_buffer_size"] = VarSpec("both", dynamic=True, integer=True)
        out[f"{p}filter_id"] = VarSpec("session")
        out[f"{p}connection_policy"] = VarSpec("global", dynamic=True)
        out[f"{p}policy"] = VarSpec("global")
        out[f"{p}statement_policy"] = VarSpec("global", dynamic=True)
        out[f"{p}flush"] = VarSpec("global", dynamic=True)
    return out


def buffer_variable(flavor: str, component: bool = False) -> str:
    """The read-buffer variable's name in ``flavor``."""
    return prefix(flavor, component) + "read_buffer_size"


def check_read(name: str, scope: str | None, spec: VarSpec | None) -> None:
    """Raise the server's error for reading ``@@[scope.]name`` in the wrong scope.

    Raises:
        UdfError: 1193 unknown, 1238 wrong scope.
    """
    if spec is None:
        raise UdfError(ER_UNKNOWN_SYSTEM_VARIABLE, f"Unknown system variable '{name}'")
    if scope == "GLOBAL" and spec.scope == "session":
        raise UdfError(ER_INCORRECT_GLOBAL_LOCAL_VAR, f"Variable '{name}' is a SESSION variable")
    if scope == "SESSION" and spec.scope == "global":
        raise UdfError(ER_INCORRECT_GLOBAL_LOCAL_VAR, f"Variable '{name}' is a GLOBAL variable")


def check_set(name: str, scope: str, spec: VarSpec | None) -> VarSpec:
    """Return the spec, or raise the server's error when ``SET [scope] name = ...`` is refused.

    Raises:
        UdfError: 1193 unknown, 1238 read only, 1229 global-only set in session scope,
            1228 session-only set globally.
    """
    if spec is None:
        raise UdfError(ER_UNKNOWN_SYSTEM_VARIABLE, f"Unknown system variable '{name}'")
    if not spec.dynamic:
        raise UdfError(ER_INCORRECT_GLOBAL_LOCAL_VAR, f"Variable '{name}' is a read only variable")
    if scope == "SESSION" and spec.scope == "global":
        raise UdfError(
            ER_GLOBAL_VARIABLE,
            f"Variable '{name}' is a GLOBAL variable and should be set with SET GLOBAL",
        )
    if scope == "GLOBAL" and spec.scope == "session":
        raise UdfError(
            ER_LOCAL_VARIABLE,
            f"Variable '{name}' is a SESSION variable and can't be used with SET GLOBAL",
        )
    return spec


def integer_value(
    name: str, raw: str | int | None, low: int, high: int
) -> tuple[int, list[Warning]]:
    """Coerce a SET value for an integer variable, clamping with warning 1292 like MySQL.

    Raises:
        UdfError: 1232 for a value that is not an integer.
    """
    if isinstance(raw, int):
        value = raw
    else:
        raise UdfError(
            ER_WRONG_TYPE_FOR_VAR, f"Incorrect argument type to variable '{name}'", "42000"
        )
    clamped = min(max(value, low), high)
    if clamped != value:
        return clamped, [
            Warning(
                "Warning", ER_TRUNCATED_WRONG_VALUE, f"Truncated incorrect {name} value: '{value}'"
            )
        ]
    return value, []


def like(pattern: str) -> re.Pattern[str]:
    """A compiled SQL ``LIKE`` pattern (case-insensitive, as for variable names)."""
    out = []
    escape = False
    for ch in pattern:
        if escape:
            out.append(re.escape(ch))
            escape = False
        elif ch == "\\":
            escape = True
        elif ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return re.compile("^" + "".join(out) + "$", re.I | re.S)
