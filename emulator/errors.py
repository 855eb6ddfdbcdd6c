"""Errors and warnings the emulated server sends to its clients (not pipeline errors).

::

    UdfError        errno + SQLSTATE + message, as the server reports them (an ERR packet)
    Warning         one row of SHOW WARNINGS (level, code, message)

These are protocol values, not failures of the emulator: every statement that fails gets one
and the session goes on.
"""

from __future__ import annotations

from dataclasses import dataclass

#: ER_UDF_ERROR, "%s UDF failed; %s"
ER_UDF_ERROR = 3200


class UdfError(Exception):
    """An error the server returns for a statement (errno, SQLSTATE, message)."""

    def __init__(self, errno: int, message: str, sqlstate: str = "HY000") -> None:
        super().__init__(message)
        self.errno, self.message, self.sqlstate = errno, message, sqlstate


def udf_failed(reason: str, function: str = "audit_log_read") -> UdfError:
    """Error 3200 with the server's template ``<function> UDF failed; <reason>``."""
    return UdfError(ER_UDF_ERROR, f"{function} UDF failed; {reason}")


@dataclass
class Warning:
    """One row of ``SHOW WARNINGS``."""

    level: str
    code: int
    message: str
