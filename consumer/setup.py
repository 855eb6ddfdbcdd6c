"""``consumer setup``: create the archive's tables, idempotently, and migrate them forward.

Steps (each safe to repeat; a crash part-way is repaired by running setup again):

1. Create the DSN's database if missing.
2. Run every archive DDL file (``CREATE TABLE IF NOT EXISTS``); ``archive/audit_rotation`` only
   when that file exists.
3. Migrate: the template file may have gained columns since the tables were created. The file is
   created under a scratch name, and each column it has that ``audit_data_template`` or
   ``audit_data`` lacks is added (``ALTER TABLE ... ADD COLUMN ... AFTER``), so new rotated tables,
   created LIKE the template, have it too. Columns are only ever added: a column that changed
   type or disappeared from the file is reported, never altered or dropped (rows would be lost).
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
MIGRATED_TABLES = ("audit_data_template", "audit_data")

_TEMPLATE_HEAD = "CREATE TABLE IF NOT EXISTS audit_data_template"
_SCRATCH = "audit_data_template_next"
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
    """Add the template file's missing columns to the template and audit_data (see Step 3)."""
    (ddl,) = sql.statements("archive/audit_data_template")
    if not ddl.startswith(_TEMPLATE_HEAD):
        raise ConfigError("archive/audit_data_template.sql must start with " + _TEMPLATE_HEAD)
    cur.execute(f"DROP TABLE IF EXISTS {_SCRATCH}")
    cur.execute(ddl.replace(_TEMPLATE_HEAD, f"CREATE TABLE {_SCRATCH}", 1))
    try:
        wanted = _columns(cur, _SCRATCH)
    finally:
        cur.execute(f"DROP TABLE IF EXISTS {_SCRATCH}")
    added: list[str] = []
    for table in MIGRATED_TABLES:
        have = _columns(cur, table)
        previous = None
        for name, definition in wanted.items():
            if name not in have:
                place = f" AFTER {ident(previous)}" if previous else " FIRST"
                cur.execute(f"ALTER TABLE {table} ADD COLUMN {ident(name)} {definition}{place}")
                added.append(f"{table}.{name}")
                log.info("added column", extra={"ctx": {"table": table, "column": name}})
            elif have[name] != definition:
                log.warning(
                    "column differs from the template file; left as it is (add-only migration)",
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
