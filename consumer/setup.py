"""``consumer setup``: create the archive's tables, idempotently, and migrate them forward.

Steps (each safe to repeat; a crash part-way is repaired by running setup again):

1. Create the DSN's database if missing.
2. Run every archive DDL file (``CREATE TABLE IF NOT EXISTS``); ``archive/audit_rotation`` only
   when that file exists.
3. Migrate: a DDL file may have gained columns since its table was created. The file is run
   under a scratch table name, and each column it has that the table lacks is added
   (``ALTER TABLE ... ADD COLUMN ... AFTER``). The template's new columns also go into
   ``audit_data``, so it stays identical to new rotated tables, created LIKE the template.
   Columns are only ever added: a column that changed type or disappeared from the file is
   reported, never altered or dropped (rows would be lost).
   Rotated tables are history and keep the shape they were written with.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import sql
from auditstream import mysql as db
from auditstream.dsn import MySQLDsn
from auditstream.errors import ArchiveError, ConfigError
from auditstream.sqlident import ident

log = logging.getLogger(__name__)

#: Archive DDL files, in dependency order (audit_data is created LIKE the template).
DDL_FILES = (
    "archive/audit_data_template",
    "archive/audit_data",
    "archive/audit_offsets",
    "archive/audit_high_water",
    "archive/audit_control",
)
OPTIONAL_DDL_FILES = ("archive/audit_rotation",)
#: DDL file → the table it creates, then the tables that must have the same columns.
MIGRATED = {
    "archive/audit_data_template": ("audit_data_template", "audit_data"),
    "archive/audit_control": ("audit_control",),
    "archive/audit_offsets": ("audit_offsets",),
    "archive/audit_high_water": ("audit_high_water",),
}

_COLUMN = re.compile(r"\s+`(?P<name>[A-Za-z0-9_]+)` (?P<definition>.*?),?$")


def setup(dsn: MySQLDsn) -> list[str]:
    """Create and migrate the archive schema of ``dsn``; return the columns added (``t.c``).

    Raises:
        ConfigError: the DSN names no database.
        ArchiveError: the archive cannot be reached or refused a statement.
    """
    if not dsn.database:
        raise ConfigError("the archive DSN must name a database (e.g. /audit_archive)")
    try:
        # Step 1
        conn = db.connect(dsn.with_database(None), autocommit=True)
        try:
            cur: Any = conn.cursor()
            cur.execute(
                f"CREATE DATABASE IF NOT EXISTS {ident(dsn.database)} "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            )
            cur.execute(f"USE {ident(dsn.database)}")
            # Step 2
            for name in DDL_FILES + _present(OPTIONAL_DDL_FILES):
                for statement in sql.statements(name):
                    cur.execute(statement)
            # Step 3
            return migrate(cur)
        finally:
            conn.close()
    except db.Error as exc:
        raise ArchiveError(f"setup failed: {exc}", dsn=str(dsn)) from exc


def migrate(cur: Any) -> list[str]:
    """Add each DDL file's missing columns to its tables (see Step 3); return ``table.column``."""
    added: list[str] = []
    for name, tables in MIGRATED.items():
        wanted = _wanted_columns(cur, name, tables[0])
        for table in tables:
            added += _add_missing(cur, table, wanted)
    return added


def _wanted_columns(cur: Any, name: str, table: str) -> dict[str, str]:
    """The columns ``sql/<name>.sql`` defines, read from a scratch copy of its table."""
    (ddl,) = sql.statements(name)
    head = f"CREATE TABLE IF NOT EXISTS {table} ("
    if not ddl.startswith(head):
        raise ConfigError(f"sql/{name}.sql must start with {head}")
    scratch = ident(f"{table}_next")
    cur.execute(f"DROP TABLE IF EXISTS {scratch}")
    cur.execute(ddl.replace(head, f"CREATE TABLE {scratch} (", 1))
    try:
        return _columns(cur, f"{table}_next")
    finally:
        cur.execute(f"DROP TABLE IF EXISTS {scratch}")


def _add_missing(cur: Any, table: str, wanted: dict[str, str]) -> list[str]:
    have = _columns(cur, table)
    added = []
    previous = None
    for name, definition in wanted.items():
        if name not in have:
            place = f" AFTER {ident(previous)}" if previous else " FIRST"
            cur.execute(f"ALTER TABLE {ident(table)} ADD COLUMN {ident(name)} {definition}{place}")
            added.append(f"{table}.{name}")
            log.info("added column", extra={"ctx": {"table": table, "column": name}})
        elif have[name] != definition:
            log.warning(
                "column differs from its DDL file; left as it is (add-only migration)",
                extra={"ctx": {"table": table, "column": name, "have": have[name]}},
            )
        previous = name
    return added


def _columns(cur: Any, table: str) -> dict[str, str]:
    """Column name → definition, in table order, from SHOW CREATE TABLE."""
    cur.execute(f"SHOW CREATE TABLE {ident(table)}")
    create = str(cur.fetchall()[0][1])
    out: dict[str, str] = {}
    for line in create.splitlines():
        match = _COLUMN.fullmatch(line)
        if match:
            out[match["name"]] = match["definition"]
    return out


def _present(names: tuple[str, ...]) -> tuple[str, ...]:
    out = []
    for name in names:
        try:
            sql.load(name)
        except FileNotFoundError:
            continue
        out.append(name)
    return tuple(out)
