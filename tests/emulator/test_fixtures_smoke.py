"""The fixture API other engineers code against: it must stay usable and stable."""

from __future__ import annotations

import json

from auditstream import mysql


def _read_all(conn, arg):
    cur = conn.cursor()
    cur.execute("SELECT audit_log_read(%s)", (arg,))
    page = cur.fetchall()[0][0]
    cur.close()
    return page


def test_default_emulator_serves_written_events(emulator):
    emulator.writer.write(
        {"class": "general", "event": "status", "general_data": {"query": "SELECT 1"}}
    )
    conn = mysql.connect(emulator.archiver_dsn)
    try:
        cur = conn.cursor()
        cur.execute("SELECT @@server_uuid, audit_log_read_bookmark()")
        uuid, bookmark = cur.fetchall()[0]
        assert uuid == emulator.server_uuid
        mark = json.loads(bookmark)
        page = json.loads(_read_all(conn, json.dumps(mark)))
        assert page[-1] is None
        assert page[0]["general_data"]["query"] == "SELECT 1"
    finally:
        conn.close()


def test_restart_keeps_port_uuid_and_log(emulator):
    emulator.writer.write({"class": "general", "event": "status"})
    port, uuid = emulator.port, emulator.server_uuid
    emulator.restart()
    assert (emulator.port, emulator.server_uuid) == (port, uuid)
    conn = mysql.connect(emulator.archiver_dsn)
    try:
        page = json.loads(_read_all(conn, '{"start": {"timestamp": "2000-01-01"}}'))
        assert [e["class"] for e in page[:-1]] == ["general"]
    finally:
        conn.close()


def test_subprocess_emulator_can_be_killed(emulator_factory):
    handle = emulator_factory("percona", subprocess=True)
    handle.writer.write({"class": "general", "event": "status"})
    handle.writer.flush()
    conn = mysql.connect(handle.archiver_dsn)
    try:
        cur = conn.cursor()
        cur.execute("SELECT @@version")
        assert cur.fetchall()[0][0].startswith("8.0")
    finally:
        conn.close()
    handle.kill()
    handle.start()
    conn = mysql.connect(handle.archiver_dsn)
    try:
        page = json.loads(_read_all(conn, '{"start": {"timestamp": "2000-01-01"}}'))
        assert len(page) == 2 and page[-1] is None
    finally:
        conn.close()


def test_a_writer_kept_across_restart_still_writes(emulator):
    writer = emulator.writer
    writer.write({"class": "a", "event": "before"})
    emulator.restart()
    writer.write({"class": "b", "event": "after"})  # the old server's writer reopens the file
    writer.close()
    conn = mysql.connect(emulator.archiver_dsn)
    try:
        page = json.loads(_read_all(conn, '{"start": {"timestamp": "2000-01-01"}}'))
    finally:
        conn.close()
    assert [e and e["event"] for e in page] == ["before", "after", None]
