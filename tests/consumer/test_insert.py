"""The insert path on the real MariaDB: duplicates skipped, every other row problem isolated."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditstream import mysql as db
from auditstream.dsn import MySQLDsn
from consumer import insert
from consumer.insert import RowWriter
from consumer.rows import load_data_line


def test_chunks_bound_rows_and_text(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [("aaaa", 1), ("bbbbbbb", 2), ("cc", 3), ("dddddddddddd", 4), ("e", 5)]
    monkeypatch.setattr(insert, "_CHUNK_BYTES", 10)
    assert insert.chunks(rows) == [(0, 1), (1, 3), (3, 4), (4, 5)]
    monkeypatch.setattr(insert, "_CHUNK_BYTES", 1000)
    monkeypatch.setattr(insert, "_CHUNK_ROWS", 2)
    assert insert.chunks(rows) == [(0, 2), (2, 4), (4, 5)]
    assert insert.chunks([]) == []


@pytest.mark.parametrize("method", ["load", "insert", "joined"])
def test_only_duplicates_are_skipped_and_bad_rows_are_isolated(
    mysql_db: MySQLDsn, method: Any
) -> None:
    """``joined``: LOAD DATA of lines joined outside (``data``, as ``Prepared.seal`` makes them)
    first, as one statement; the bad rows are then isolated with the lines."""
    conn = db.connect(mysql_db, allow_local_infile=True)
    writer = RowWriter("load" if method == "joined" else method)
    try:
        cur: Any = conn.cursor()
        cur.execute("SET SESSION max_error_count = 65535")
        cur.execute(
            "CREATE TABLE audit_data (k INT PRIMARY KEY, name VARCHAR(5) NOT NULL, n TINYINT UNSIGNED)"
        )
        cur.execute("INSERT INTO audit_data VALUES (1, 'old', 1)")
        rows = [
            (1, "dup", 1),
            (2, "ok", 2),
            (3, "toolong", 3),
            (4, "ok", -1),
            (5, None, 5),
            (6, "ok", 6),
        ]
        columns = ("k", "name", "n")
        if method == "joined":
            lines = [load_data_line(row).encode() for row in rows]
            result = writer.insert(cur, "audit_data", columns, [], lines, data=b"".join(lines))
        else:
            result = writer.insert(cur, "audit_data", columns, rows)
        inserted, duplicates, bad = result
        conn.commit()
        assert (inserted, duplicates, sorted(bad)) == (2, 1, [2, 3, 4])
        cur.execute("SELECT k, name, n FROM audit_data ORDER BY k")
        assert cur.fetchall() == [(1, "old", 1), (2, "ok", 2), (6, "ok", 6)]
    finally:
        writer.close()
        conn.close()


@given(st.lists(st.integers(0, 40), max_size=30), st.integers(1, 8), st.integers(1, 200))
def test_one_statement_is_what_line_chunks_says(
    lengths: list[int], max_rows: int, max_bytes: int
) -> None:
    lines = [b"x" * n for n in lengths]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(insert, "_LOAD_CHUNK_ROWS", max_rows)
        patch.setattr(insert, "_CHUNK_BYTES", max_bytes)
        if insert._one_statement(lines, b"".join(lines)):
            assert insert.line_chunks(lines) == [(0, len(lines))]


class _Weak(list):  # type: ignore[type-arg]
    """A list that a weak reference can watch."""


@pytest.mark.parametrize("method", ["load", "insert"])
def test_a_batch_is_freed_without_the_cyclic_gc(mysql_db: MySQLDsn, method: Any) -> None:
    """The consumer runs with a lazy cyclic GC (``consumer.loop.GC_THRESHOLD``): a reference
    cycle that reaches a batch's rows or lines would keep them.

    Bad rows only on the ``load`` path: on ``insert`` the connector's own exceptions form
    cycles whose frames reach the caller's (a rare path: ``local_infile`` off and a bad row).
    """
    conn = db.connect(mysql_db, allow_local_infile=True)
    writer = RowWriter(method)
    try:
        cur: Any = conn.cursor()
        cur.execute("SET SESSION max_error_count = 65535")
        cur.execute("CREATE TABLE audit_data (k INT PRIMARY KEY, name VARCHAR(5) NOT NULL)")
        gc.disable()
        try:
            bad_every = 7 if method == "load" else 1000
            rows = _Weak((k, "ok" if k % bad_every else "toolong") for k in range(1, 51))
            lines = _Weak(f"{k}\t{name}\n".encode() for k, name in rows)
            watch = [weakref.ref(rows), weakref.ref(lines)]
            text = lines if method == "load" else None
            inserted, _, bad = writer.insert(cur, "audit_data", ("k", "name"), rows, text)
            expected = [i for i, (k, _) in enumerate(rows) if not k % bad_every]
            assert (inserted, sorted(bad)) == (50 - len(expected), expected)
            del rows, lines, text, bad
            conn.commit()
            assert [ref() for ref in watch] == [None, None]  # freed by reference counting
        finally:
            gc.enable()
    finally:
        writer.close()
        conn.close()


def test_line_chunks_bound_rows_and_text(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [b"aaa\n", b"bbbbbb\n", b"c\n", b"ddddddddddd\n", b"\n"]
    monkeypatch.setattr(insert, "_CHUNK_BYTES", 10)
    assert insert.line_chunks(lines) == [(0, 1), (1, 3), (3, 4), (4, 5)]
    monkeypatch.setattr(insert, "_CHUNK_BYTES", 1000)
    monkeypatch.setattr(insert, "_LOAD_CHUNK_ROWS", 2)
    assert insert.line_chunks(lines) == [(0, 2), (2, 4), (4, 5)]
    assert insert.line_chunks([]) == []
