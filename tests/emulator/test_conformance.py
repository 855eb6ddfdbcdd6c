"""Documented MySQL Enterprise Audit behaviour, checked through mysql-connector-python (C ext).

Runs against the emulator in both flavors by default, or against a real server (see
``tests/emulator/conftest.py``). Only facts from ``shared/docs/enterprise-audit.md`` are
asserted here; the emulator's own choices for undocumented details are tested in
``test_server.py``.
"""

from __future__ import annotations

import json
import re
import uuid

import pytest

from auditstream import mysql
from tests.emulator.conftest import AuditSource, Reader, wait_for_marker

TS = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def _error(reader: Reader, arg: str | None) -> mysql.Error:
    with pytest.raises(mysql.Error) as info:
        reader.call(arg)
    return info.value


def test_bookmark_names_the_last_written_event(reader: Reader, emit) -> None:
    marker = emit()
    mark = reader.bookmark()
    assert set(mark) == {"timestamp", "id"}
    assert TS.match(mark["timestamp"]) and isinstance(mark["id"], int)
    page = reader.page(json.dumps(mark))
    assert (page[0]["timestamp"], page[0]["id"]) == (mark["timestamp"], mark["id"])
    assert marker in json.dumps(page[0])
    assert page[-1] is None


def test_audited_statements_become_events_and_reader_is_not_audited(
    reader: Reader, emit, audit_source: AuditSource
) -> None:
    start = reader.bookmark()
    marker = emit(3)
    found = wait_for_marker(reader, start, marker, 3)
    assert len(found) == 3
    for ev in found:
        assert (ev["class"], ev["event"]) == ("general", "status")
        assert ev["general_data"]["status"] == 0
        assert ev["general_data"]["sql_command"] == "select"
        assert ev["account"]["user"] == audit_source.audited.user
    everything = reader.until_end(json.dumps(start))
    assert not any("audit_log_read" in json.dumps(e) for e in everything), (
        "the reader audits itself"
    )


def test_sequence_continues_until_trailing_null_then_fails_3200(reader: Reader, emit) -> None:
    start = reader.bookmark()
    emit(4)
    arg = json.dumps({**start, "max_array_length": 2})
    first = reader.page(arg)
    assert len(first) == 2 and first[-1] is not None
    seen = list(first)
    for _ in range(100):
        page = reader.page()
        if page[-1] is None:
            seen += page[:-1]
            break
        seen += page
    keys = [(e["timestamp"], e["id"]) for e in seen]
    assert keys == sorted(keys) and len(set(keys)) == len(keys) >= 5
    err = _error(reader, None)
    assert err.errno == 3200


def test_max_array_length_alone_continues_the_sequence(reader: Reader, emit) -> None:
    start = reader.bookmark()
    emit(3)
    assert len(reader.page(json.dumps({**start, "max_array_length": 1}))) == 1
    page = reader.page('{"max_array_length": 2}')
    assert len(page) == 2 and page[-1] is not None


def test_reading_without_a_sequence_fails_3200(reader: Reader, emit) -> None:
    emit()
    err = _error(reader, None)
    assert err.errno == 3200
    assert err.sqlstate == "HY000"


def test_close_ends_the_sequence(reader: Reader, emit, audit_source: AuditSource) -> None:
    emit(2)
    reader.page(json.dumps({**reader.bookmark(), "max_array_length": 1}))
    closed = reader.call("null")
    assert closed == ("OK" if audit_source.flavor == "percona" else "null")
    assert _error(reader, None).errno == 3200


@pytest.mark.parametrize("value", ["0", "-1", '"5"', "1.5", "true"])
def test_invalid_max_array_length_is_3218(reader: Reader, emit, value: str) -> None:
    emit()
    mark = reader.bookmark()
    arg = json.dumps(mark)[:-1] + f', "max_array_length": {value}}}'
    assert _error(reader, arg).errno == 3218


@pytest.mark.parametrize("arg", ['{"timestamp": "2020-01-01 00:00:00"}', '{"id": 0}'])
def test_half_a_bookmark_is_an_error(reader: Reader, emit, arg: str) -> None:
    emit()
    _error(reader, arg)


def test_start_with_a_bookmark_is_an_error(reader: Reader, emit) -> None:
    emit()
    mark = reader.bookmark()
    _error(reader, json.dumps({**mark, "start": {"timestamp": mark["timestamp"]}}))


def test_start_reads_from_the_first_event_at_or_after_a_time(reader: Reader, emit) -> None:
    marker = emit()
    mark = reader.bookmark()
    events = reader.until_end(json.dumps({"start": {"timestamp": mark["timestamp"]}}))
    assert events and all(e["timestamp"] >= mark["timestamp"] for e in events)
    assert any(marker in json.dumps(e) for e in events)
    day = reader.until_end(json.dumps({"start": {"timestamp": mark["timestamp"][:10]}}))
    assert len(day) >= len(events)


def test_buffer_size_is_clamped_with_a_warning(reader: Reader, audit_source: AuditSource) -> None:
    cur = reader.conn.cursor()
    scope = "GLOBAL" if audit_source.flavor == "percona" else "SESSION"
    try:
        for given, expected in ((100, 32768), (10**9, 4194304), (65536, 65536)):
            cur.execute(f"SET {scope} {audit_source.buffer_var} = {given}")
            clamped = given != expected
            assert (cur.warning_count > 0) == clamped
            cur.execute("SHOW WARNINGS")
            rows = cur.fetchall()
            assert (len(rows) > 0) == clamped
            if clamped:
                assert rows[0][1] == 1292
            cur.execute(f"SELECT @@{scope.lower()}.{audit_source.buffer_var}")
            assert int(cur.fetchall()[0][0]) == expected
    finally:
        if scope == "GLOBAL":  # a global setting outlives this test's session
            cur.execute(f"SET GLOBAL {audit_source.buffer_var} = 32768")
        cur.close()


def test_percona_has_no_session_buffer_variable(reader: Reader, audit_source: AuditSource) -> None:
    if audit_source.flavor != "percona":
        pytest.skip("Percona only")
    cur = reader.conn.cursor()
    with pytest.raises(mysql.Error) as info:
        cur.execute("SET SESSION audit_log_read_buffer_size = 65536")
    assert info.value.errno == 1193


def test_pages_hold_whole_events_within_the_buffer(
    reader: Reader, emit, audit_source: AuditSource
) -> None:
    start = reader.bookmark()
    emit(60, size=1500)
    reader.set_buffer(audit_source, 32768)
    raw = reader.call(json.dumps(start))
    pages = [raw]
    while json.loads(raw)[-1] is not None:
        raw = reader.call()
        pages.append(raw)
    assert len(pages) > 1
    for text in pages:
        assert len(text.encode()) <= 32768
        assert isinstance(json.loads(text), list)


def test_oversized_event_is_skipped_with_a_warning_or_returned_whole(
    reader: Reader, emit, audit_source: AuditSource
) -> None:
    start = reader.bookmark()
    reader.set_buffer(audit_source, 32768)
    marker = emit(1, size=40_000)
    emit(1)
    events = []
    warned = False
    page = reader.page(json.dumps(start))
    while True:
        warned = warned or reader.warning_count > 0
        done = page[-1] is None
        events += [e for e in page if e is not None]
        if done:
            break
        page = reader.page()
    big = [e for e in events if marker in json.dumps(e)]
    if audit_source.flavor == "percona":
        assert len(big) == 1 and len(big[0]["general_data"]["query"]) > 40_000
    else:
        assert big == [] and warned


def test_reading_needs_audit_admin(audit_source: AuditSource, emit) -> None:
    if audit_source.plain is None:
        pytest.skip("no account without AUDIT_ADMIN given")
    emit()
    conn = audit_source.connect(audit_source.plain)
    try:
        with pytest.raises(mysql.Error):
            Reader(conn).call('{"start": {"timestamp": "2000-01-01"}}')
    finally:
        conn.close()


def test_repositioning_an_open_sequence(reader: Reader, emit, audit_source: AuditSource) -> None:
    emit(3)
    mark = reader.bookmark()
    reader.page(json.dumps({"start": {"timestamp": "2000-01-01"}, "max_array_length": 1}))
    if audit_source.flavor == "percona":
        _error(reader, json.dumps(mark))
        reader.call("null")
    assert reader.page(json.dumps(mark))[0]["id"] == mark["id"]


def test_percona_bookmark_must_match_exactly(
    reader: Reader, emit, audit_source: AuditSource
) -> None:
    if audit_source.flavor != "percona":
        pytest.skip("Percona only")
    emit()
    mark = reader.bookmark()
    missing = {"timestamp": mark["timestamp"], "id": mark["id"] + 1000}
    assert reader.page(json.dumps(missing)) == [None]


def test_server_identity_and_audit_variables(reader: Reader, audit_source: AuditSource) -> None:
    cur = reader.conn.cursor()
    cur.execute("SELECT @@server_uuid, @@version")
    server_uuid, version = cur.fetchall()[0]
    assert re.match(r"^[0-9a-f-]{36}$", server_uuid)
    assert re.match(r"^\d+\.\d+\.\d+", version)
    cur.execute("SHOW VARIABLES LIKE 'audit_log%'")
    variables = dict(cur.fetchall())
    assert variables[audit_source.format_var] == audit_source.fmt
    assert variables[audit_source.buffer_var].isdigit()
    cur.close()


def test_filter_functions_and_tables(reader: Reader) -> None:
    cur = reader.conn.cursor()
    cur.execute(
        """SELECT audit_log_filter_set_filter('conf_probe', '{ "filter": { "log": false } }')"""
    )
    assert cur.fetchall()[0][0] in (b"OK", "OK")
    cur.execute("SELECT NAME FROM mysql.audit_log_filter WHERE NAME = 'conf_probe'")
    assert cur.fetchall() == [("conf_probe",)]
    cur.execute("SELECT audit_log_filter_remove_filter('conf_probe')")
    assert cur.fetchall()[0][0] in (b"OK", "OK")
    cur.close()


def test_percona_jsonl_pages_hold_one_reencoded_event_per_line(
    reader: Reader, emit, audit_source: AuditSource
) -> None:
    """Percona's reader re-encodes every event (json_reader/audit_json_handler.cc): one line per
    event, ``": "`` and ``", "`` separators, ``/`` and non-ASCII copied, and a final newline."""
    if audit_source.fmt != "JSONL":
        pytest.skip("Percona JSONL only")
    emit()
    start = reader.bookmark()
    conn = audit_source.connect(audit_source.audited)
    marker = "m" + uuid.uuid4().hex[:12]
    cur = conn.cursor()
    cur.execute(f"SELECT '{marker}}},\n{{', \"a/b\", 'é\t' AS v")
    cur.fetchall()
    cur.close()
    conn.close()
    found = wait_for_marker(reader, start, marker)
    assert len(found) == 1
    text = reader.call(json.dumps(start))
    assert text.startswith("[\n") and text.endswith("\n]\n")
    lines = text.split("\n")
    assert lines[-3:] == ["null", "]", ""] or lines[-2:] == ["]", ""]
    body = [line for line in lines[1:-2] if line != "null"]
    assert body and all(line.endswith(",") for line in body[:-1])
    for line in body:
        event = json.loads(line.removesuffix(","))
        assert line.removesuffix(",") == json.dumps(event, ensure_ascii=False)
    ours = [line for line in body if marker in line]
    assert len(ours) == 1
    assert f"SELECT '{marker}}},\\n{{', \\\"a/b\\\", 'é\\t' AS v" in ours[0]
