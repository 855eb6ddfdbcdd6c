"""The dump format's codec and names, tested once for every writer and reader of dumps."""

from __future__ import annotations

import io
from datetime import datetime

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from auditstream.errors import ObjectStoreError
from consumer import dumpformat
from consumer.dumpformat import (
    LOAD_CLAUSES,
    DumpEvent,
    DumpObject,
    HashingStream,
    Manifest,
    chunk_name,
    chunk_number,
    csv_line,
    data_lines,
    event_reader,
    export_name,
    is_data,
    is_object_name,
    split_line,
    tsv_line,
)
from consumer.rows import load_data_line

AWKWARD = st.text(alphabet=st.sampled_from('ab\t\n\r\0\\",N é😀'))


def test_escaping_of_awkward_values() -> None:
    assert tsv_line(["a\tb\nc\\d\re\0", None, 1.5, 7]) == "a\\tb\\nc\\\\d\\re\\0\t\\N\t1.5\t7\n"
    assert csv_line(['say "hi"', None, 2, 0.5]) == '"say \\"hi\\"",\\N,2,0.5\r\n'


@pytest.mark.parametrize(
    ("line", "quoted", "fields"),
    [
        ("a\tb\\tc\t\\N\t", False, ["a", "b\tc", None, ""]),
        ('"x,\\"y\\"",12,\\N,"\\\\N"', True, ['x,"y"', "12", None, "\\N"]),
        ('"line\\nbreak","\\r"', True, ["line\nbreak", "\r"]),
    ],
)
def test_the_dump_dialects_are_unescaped(line: str, quoted: bool, fields: list[str | None]) -> None:
    assert split_line(line, quoted) == fields
    assert split_line(tsv_line(fields).rstrip("\n"), False) == fields
    assert split_line(csv_line(fields).rstrip("\r\n"), True) == fields


@given(st.lists(st.one_of(st.none(), AWKWARD), min_size=1, max_size=6))
def test_any_row_written_by_the_dump_reads_back(fields: list[str | None]) -> None:
    assert split_line(tsv_line(fields)[:-1], False) == fields
    assert split_line(csv_line(fields)[:-2], True) == fields


@given(st.lists(st.one_of(st.none(), AWKWARD), min_size=1, max_size=6))
def test_the_sinks_load_data_line_is_the_same_dialect(fields: list[str | None]) -> None:
    """The sink inlines the escapes (no ``\\r``: LOAD DATA reads a bare CR as data)."""
    line = load_data_line(fields)
    assert split_line(line[:-1], False) == fields
    if not any(f is not None and "\r" in f for f in fields):
        assert line == tsv_line(fields)


def test_the_sinks_line_and_the_dump_agree_on_times_and_numbers() -> None:
    row = [datetime(2026, 1, 2, 3, 4, 5), 7, 0.1, None]  # noqa: DTZ001 - naive UTC, as stored
    assert load_data_line(row) == tsv_line(row) == "2026-01-02 03:04:05\t7\t0.1\t\\N\n"


def test_names() -> None:
    table = "audit_data_20260101_000000"
    assert chunk_name(table, 3) == f"{table}@3.tsv.zst" and chunk_number(chunk_name(table, 3)) == 3
    assert export_name(table) == f"{table}.csv" and chunk_number(export_name(table)) == 0
    assert is_data(chunk_name(table, 0)) and is_data(export_name(table))
    assert not is_data(f"{table}.sql") and not is_data(dumpformat.MANIFEST)
    for good in (chunk_name(table, 12), export_name(table), f"{table}.sql", f"{table}.json"):
        assert is_object_name(table, good)
    for bad in (f"{table}/../x.csv", f"{table}@1.tsv", "other.csv", f"{table}@x.tsv.zst"):
        assert not is_object_name(table, bad)
    assert set(LOAD_CLAUSES) == {"dump", "export"}


def test_data_lines_are_read_across_zstd_frames_and_hashed() -> None:
    first, second = tsv_line(["a", None]).encode(), tsv_line(["b\\c", "d"]).encode()
    compress = zstandard.ZstdCompressor().compress
    data = compress(first) + compress(second)
    stream = HashingStream(iter([data[:5], data[5:]]))
    assert list(data_lines(stream, "t@0.tsv.zst")) == [(1, ["a", None]), (2, ["b\\c", "d"])]
    stream.drain()
    assert stream.size == len(data)
    plain = HashingStream(iter([csv_line(["x,y", 1]).encode()]))
    assert list(data_lines(plain, "t.csv")) == [(1, ["x,y", "1"])]
    assert isinstance(plain, io.RawIOBase)


def test_data_lines_are_named_and_events_are_picked_by_the_manifests_columns() -> None:
    text = tsv_line(["7", "srv", "x", "2026-01-01 00:00:00", "{}"]).encode()
    stream = HashingStream(iter([zstandard.ZstdCompressor().compress(text)]))
    (line,) = data_lines(stream, "t@0.tsv.zst")
    assert (line.number, line.fields) == (1, ["7", "srv", "x", "2026-01-01 00:00:00", "{}"])
    read = event_reader(["id", "server_uuid", "class", "ts", "raw"])  # no chain columns
    assert read(line.fields) == DumpEvent("srv", "2026-01-01 00:00:00", "7", "{}", None, None)


def test_a_manifest_reads_back_and_a_bad_one_is_a_clear_error() -> None:
    manifest = Manifest(
        "audit_data_20260101_000000", "dump", 1, {}, ["id"], "CREATE TABLE t (id INT)",
        dumpformat.TSV, "zstd", [DumpObject("a@0.tsv.zst", 3, "ab" * 32)], schema_version=4,
    )  # fmt: skip
    assert Manifest.from_json(manifest.to_json()) == manifest
    other = manifest.to_json().replace(dumpformat.FORMAT.encode(), b"other/9")
    for data, message in [
        (b"{not json", "cannot read the manifest"),
        (b"[]", "unknown dump format None"),
        (other, "unknown dump format 'other/9'"),
        (manifest.to_json().replace(b'"rows"', b'"row_count"'), "cannot read the manifest"),
    ]:
        with pytest.raises(ObjectStoreError, match=message) as caught:
            Manifest.from_json(data, "t/manifest.json")
        assert caught.value.context == {"object": "t/manifest.json"}
