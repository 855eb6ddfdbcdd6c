"""LOAD DATA text: every row read back by LOAD DATA's own rules gives the values written."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from consumer.rows import CONTROL_COLUMNS, ControlRow, control_row, load_data_line, load_data_text

_EARLIEST = datetime(1000, 1, 1)  # noqa: DTZ001 - rows hold naive UTC times (identity())
_ESCAPES = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\0": "\0"}

values = st.one_of(
    st.none(),
    st.text(st.characters(codec="utf-8")),
    st.sampled_from(["\\N", "\\", "\t", "\n", "\0", "a\\tb", "\\\\N", "NULL", ""]),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.datetimes(min_value=_EARLIEST).map(lambda d: d.replace(microsecond=0)),
)
rows = st.lists(st.lists(values, min_size=1, max_size=8).map(tuple), max_size=6)


def read_back(text: bytes) -> list[list[str | None]]:
    """LOAD DATA's reading of ``FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\'``, written out."""
    out: list[list[str | None]] = []
    for line in text.decode("utf-8").split("\n")[:-1]:
        fields: list[str | None] = []
        for field in line.split("\t"):
            if field == "\\N":
                fields.append(None)
            else:
                fields.append(re.sub(r"\\[\\tn0]", lambda m: _ESCAPES[m.group()], field))
        out.append(fields)
    return out


def as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return value.isoformat(" ")
    return repr(value) if isinstance(value, float) else str(value)


@given(rows)
def test_text_reads_back_as_the_values_and_lines_join_to_the_text(
    batch: list[tuple[Any, ...]],
) -> None:
    text = load_data_text(batch)
    assert read_back(text) == [[as_text(v) for v in row] for row in batch]
    assert "".join(load_data_line(row) for row in batch).encode() == text


def test_a_control_row_is_named_in_column_order_with_at_in_naive_utc() -> None:
    at = datetime(2026, 1, 1, 2, 0, 0, 123000, tzinfo=timezone(timedelta(hours=2)))
    record = {"server_uuid": "srv", "kind": "gap", "at": at, "reason": "oversized", "to_id": 9}
    row = control_row(record, "mysql.audit.control", 3, 42)
    assert isinstance(row, tuple) and len(row) == len(CONTROL_COLUMNS)
    assert row == ControlRow(
        "mysql.audit.control", 3, 42, "srv", "gap", datetime(2026, 1, 1, 0, 0, 0, 123000),  # noqa: DTZ001
        reason="oversized", to_id=9,
    )  # fmt: skip
    assert row.at == at.astimezone(UTC).replace(tzinfo=None)
    assert load_data_line(row).split("\t")[CONTROL_COLUMNS.index("reason")] == "oversized"
