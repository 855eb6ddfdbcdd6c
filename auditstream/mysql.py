"""The one adapter around mysql-connector-python's ``connect``.

The C extension is asked for explicitly: without ``use_pure=False`` the connector silently
falls back to pure Python when the extension does not load (as 26.x does on OpenSSL 3.0).
"""

from __future__ import annotations

from typing import Any

import mysql.connector
from mysql.connector.abstracts import MySQLConnectionAbstract

from auditstream.dsn import MySQLDsn

try:
    import _mysql_connector  # type: ignore[import-not-found]  # noqa: F401

    HAVE_C_EXTENSION = True
except ImportError:  # pragma: no cover - depends on the platform
    HAVE_C_EXTENSION = False

Connection = MySQLConnectionAbstract
Error = mysql.connector.Error
errorcode = mysql.connector.errorcode


def connect(dsn: MySQLDsn, **overrides: Any) -> MySQLConnectionAbstract:
    """Open a session on ``dsn`` (UTC time zone, utf8mb4, strict SQL mode).

    Raises:
        mysql.connector.Error: the caller translates it into its own error class.
    """
    kwargs: dict[str, Any] = {
        "use_pure": not HAVE_C_EXTENSION,
        "charset": "utf8mb4",
        "collation": "utf8mb4_bin",
        "autocommit": False,
        "connection_timeout": 10,
        "time_zone": "+00:00",
        "sql_mode": "STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION,NO_ZERO_DATE,NO_ZERO_IN_DATE,"
        "ERROR_FOR_DIVISION_BY_ZERO",
    }
    kwargs.update(dsn.connect_kwargs())
    kwargs.update(overrides)
    conn = mysql.connector.connect(**kwargs)
    assert isinstance(conn, MySQLConnectionAbstract)  # noqa: S101 - pooled variants not used
    return conn


def is_connection_error(exc: BaseException) -> bool:
    """True when ``exc`` means the server is unreachable or the session is gone."""
    if isinstance(
        exc, mysql.connector.errors.InterfaceError | mysql.connector.errors.OperationalError
    ):
        return True
    errno = getattr(exc, "errno", None)
    return errno in {2003, 2006, 2013, 2055, 1927, 4031, 1053}


def fetchall(cursor: Any) -> list[tuple[Any, ...]]:
    """The cursor's rows as plain tuples (the connector's hints also allow dict rows)."""
    return [tuple(row) for row in cursor.fetchall()]


def fetchone(cursor: Any) -> tuple[Any, ...] | None:
    """The next row as a plain tuple, or None."""
    row = cursor.fetchone()
    return None if row is None else tuple(row)
