"""SQL identifiers: never built from unchecked input.

Table and database names the pipeline puts into SQL come from its own constants, a UTC clock, or
settings validated here; anything else is refused before it reaches a statement.
"""

from __future__ import annotations

import re

from auditstream.errors import ConfigError

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
ROTATED_TABLE = re.compile(r"audit_data_(\d{8}_\d{6})(?:_(\d{1,3}))?")


def ident(name: str) -> str:
    """Return ``name`` quoted with backticks if it is a plain identifier.

    Raises:
        ConfigError: ``name`` is not ``[A-Za-z_][A-Za-z0-9_]{0,63}``.
    """
    if not _IDENT.fullmatch(name):
        raise ConfigError(
            "not a valid SQL identifier (letters, digits, underscore; at most 64)",
            identifier=name,
        )
    return f"`{name}`"


def rotated_table(name: str) -> str:
    """Return ``name`` quoted if it is a rotated table name ``audit_data_YYYYmmdd_HHMMSS[_N]``.

    Raises:
        ConfigError: any other name.
    """
    if not ROTATED_TABLE.fullmatch(name):
        raise ConfigError("not a rotated audit table name", table=name)
    return f"`{name}`"
