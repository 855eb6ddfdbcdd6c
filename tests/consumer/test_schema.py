"""The schema versions name the layouts of the project's own audit_data DDL."""

from __future__ import annotations

import pytest

from auditstream.errors import ArchiveContentError
from consumer.schema import SCHEMA_VERSION, check_dump_columns, template_columns, version_of


def test_the_current_ddl_is_the_newest_version() -> None:
    # Fails when a column is added to sql/archive/audit_data_template.sql without a version.
    columns = template_columns()
    assert columns[:3] == ["server_uuid", "ts", "id"]
    assert version_of(columns) == SCHEMA_VERSION == 2
    assert version_of(columns[: columns.index("kafka_offset") + 1]) == 1


def test_anything_else_is_no_version_and_refused() -> None:
    columns = template_columns()
    assert version_of([]) is None
    assert version_of(columns[:-1]) is None  # between two versions
    assert version_of([*columns, "extra"]) is None
    assert version_of(list(reversed(columns))) is None
    assert check_dump_columns(columns, None, table="t") == 2
    with pytest.raises(ArchiveContentError, match=r"dump: schema version 1.*project: schema"):
        check_dump_columns(columns, 1, table="t")
