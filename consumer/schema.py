"""The event tables' schema version: which columns ``sql/archive/audit_data_template.sql`` defines.

The DDL file is the only source of truth for the columns of ``audit_data`` and the rotated tables.
It changes by adding columns at the end only (``consumer setup`` migrates add-only), so every
older layout is a prefix of the current one and a version is named by its last column:

====  ================  =====================================================
 1    ``kafka_offset``  the first release
 2    ``chain_seq``     ``chain``, ``chain_seq``: the tamper-evidence link
====  ================  =====================================================

New dump manifests record ``schema_version``; ``restore`` checks a dump's columns against the
DDL file (never against the manifest's own DDL, which comes from untrusted storage).

Trap: adding a column to the template means adding a version here, or ``test_schema`` fails.
"""

from __future__ import annotations

import re

import sql
from auditstream.errors import ArchiveContentError

TEMPLATE_DDL = "archive/audit_data_template"
#: version → the last column of that version's layout.
VERSIONS = {1: "kafka_offset", 2: "chain_seq"}
SCHEMA_VERSION = max(VERSIONS)
_COLUMN = re.compile(r"\s+([a-z_][a-z0-9_]*)\s+[A-Z]")


def template_columns() -> list[str]:
    """The columns of the project's template DDL, in table order."""
    (ddl,) = sql.statements(TEMPLATE_DDL)
    return [m.group(1) for line in ddl.splitlines() if (m := _COLUMN.match(line))]


def version_of(columns: list[str]) -> int | None:
    """The schema version whose layout ``columns`` is exactly, or None if it is none of them."""
    ours = template_columns()
    if not columns or columns != ours[: len(columns)]:
        return None
    return next((v for v, last in VERSIONS.items() if last == columns[-1]), None)


def check_dump_columns(columns: list[str], claimed: int | None, *, table: str) -> int:
    """The schema version of a dump with ``columns`` (``claimed``: its manifest's); refuse a misfit.

    Raises:
        ArchiveContentError: (not retriable, exit 5) the columns are no version of the
            project's DDL, or not the version the manifest claims.
    """
    found = version_of(columns)
    if found is None or (claimed is not None and claimed != found):
        raise ArchiveContentError(
            "the dump's columns do not match this project's audit_data DDL"
            f" (dump: schema version {claimed if claimed is not None else 'not recorded'},"
            f" {len(columns)} columns, the last {columns[-1] if columns else None!r}; project:"
            f" schema version {SCHEMA_VERSION}, {len(template_columns())} columns)."
            " Restore it with the release that wrote it",
            table=table,
        )
    return found
