"""The emulator's protocol surface and its documented choices, through mysql-connector (C ext)."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import threading
from pathlib import Path

import pytest

from auditstream import mysql
from auditstream.dsn import MySQLDsn
from emulator.traffic import OVERSIZED_BYTES

SAMPLE = Path("/work/shared/samples/mysql-8.0.22-commercial-audit.log")
MB4 = 4194304


def connect(dsn: MySQLDsn):
    return mysql.connect(dsn, autocommit=True)


def query(conn, sql: str, params=None):
    cur = conn.cursor()
    cur.execute(sql, params)
    rows = cur.fetchall() if cur.description else []
    cur.close()
    return rows


def read(conn, arg=None) -> bytes:
    sql = "SELECT audit_log_read()" if arg is None else "SELECT audit_log_read(%s)"
    return query(conn, sql, None if arg is None else (arg,))[0][0]


def test_pages_carry_the_files_raw_bytes(emulator) -> None:
    lines = [
        ln.rstrip().removesuffix(b",") for ln in SAMPLE.read_bytes().splitlines() if ln.strip()
    ]
    for line in lines:
        emulator.writer.write(line)
    conn = connect(emulator.archiver_dsn)
    try:
        page = read(conn, '{"timestamp": "2020-10-19 19:21:33", "id": 0}')
    finally:
        conn.close()
    assert isinstance(page, bytes), "UDF results are binary strings"
    assert page == b"[\n" + b",\n".join(lines) + b",\nnull\n]"


def test_four_megabyte_pages_hold_whole_events_and_end_with_null(emulator) -> None:
    for i in range(12):
        emulator.writer.write(
            {
                "class": "general",
                "event": "status",
                "general_data": {"query": f"{i}" + "é" * 400_000},
            }
        )
    conn = connect(emulator.archiver_dsn)
    try:
        query(conn, f"SET SESSION audit_log_read_buffer_size = {MB4}")
        pages = [read(conn, '{"start": {"timestamp": "2000-01-01"}}')]
        while not pages[-1].endswith(b"null\n]"):
            pages.append(read(conn))
    finally:
        conn.close()
    assert len(pages) >= 2
    assert all(len(p) <= MB4 for p in pages)
    events = [e for p in pages for e in json.loads(p) if e is not None]
    assert [e["general_data"]["query"][0] for e in events] == [str(i)[0] for i in range(12)]


def test_oversized_event_at_4mb_skipped_with_warning_count(emulator) -> None:
    emulator.writer.write({"class": "general", "event": "status"})
    emulator.writer.write(
        {"class": "general", "event": "status", "general_data": {"query": "x" * OVERSIZED_BYTES}}
    )
    emulator.writer.write({"class": "general", "event": "status"})
    conn = connect(emulator.archiver_dsn)
    try:
        query(conn, f"SET SESSION audit_log_read_buffer_size = {MB4}")
        cur = conn.cursor()
        cur.execute("SELECT audit_log_read(%s)", ('{"start": {"timestamp": "2000-01-01"}}',))
        page = json.loads(cur.fetchall()[0][0])
        assert cur.warning_count == 1
        cur.execute("SHOW WARNINGS")
        ((level, code, message),) = cur.fetchall()
        assert (level, code) == ("Warning", 1301) and "skipped" in message
        cur.execute("SELECT @@warning_count")
        assert cur.fetchall() == [(1,)]
        cur.close()
    finally:
        conn.close()
    assert len(page) == 3 and page[-1] is None


def test_percona_returns_events_over_4mb_whole(emulator_factory) -> None:
    handle = emulator_factory("percona")
    handle.writer.write(
        {"class": "general", "event": "status", "general_data": {"query": "y" * (17 * 1024 * 1024)}}
    )
    conn = connect(handle.archiver_dsn)
    try:
        page = read(conn, '{"start": {"timestamp": "2000-01-01"}}')
    finally:
        conn.close()
    assert len(page) > 17 * 1024 * 1024, "a row over 16 MiB is split into several packets"
    assert len(json.loads(page)[0]["general_data"]["query"]) == 17 * 1024 * 1024


def test_wrong_password_and_unknown_user_get_1045(emulator) -> None:
    for dsn in (
        emulator.archiver_dsn.model_copy(update={"password": None}),
        MySQLDsn(user="nobody", password="x", port=emulator.port),
    ):
        with pytest.raises(mysql.Error) as info:
            mysql.connect(dsn)
        assert info.value.errno == 1045 and info.value.sqlstate == "28000"


def test_reading_without_audit_admin_fails_like_a_udf(emulator) -> None:
    conn = connect(emulator.dsn("app"))
    try:
        with pytest.raises(mysql.Error) as info:
            read(conn, '{"start": {"timestamp": "2000-01-01"}}')
        assert info.value.errno == 1123
        assert "AUDIT_ADMIN" in info.value.msg
    finally:
        conn.close()


def test_reading_functions_fail_when_the_format_is_not_json(emulator_factory) -> None:
    handle = emulator_factory(audit_log_format="NEW")
    conn = connect(handle.archiver_dsn)
    try:
        assert query(conn, "SELECT @@audit_log_format") == [("NEW",)]
        for sql in (
            "SELECT audit_log_read_bookmark()",
            'SELECT audit_log_read(\'{"start": {"timestamp": "2000-01-01"}}\')',
        ):
            with pytest.raises(mysql.Error) as info:
                query(conn, sql)
            assert info.value.errno == 3200
    finally:
        conn.close()


def test_archiver_without_log_nothing_audits_itself(emulator_factory) -> None:
    handle = emulator_factory(log_nothing_for_archiver=False)
    conn = connect(handle.archiver_dsn)
    try:
        query(conn, "CREATE DATABASE IF NOT EXISTS audit_archive")
        query(
            conn,
            "CREATE TABLE IF NOT EXISTS audit_archive.selfaudit_probe (k VARCHAR(64) PRIMARY KEY, n INT)",
        )
        query(conn, "REPLACE INTO audit_archive.selfaudit_probe VALUES (@@server_uuid, 1)")
        page = json.loads(read(conn, '{"start": {"timestamp": "2000-01-01"}}'))
        rows = query(conn, "SELECT k FROM audit_archive.selfaudit_probe")
    finally:
        conn.close()
    assert (handle.server_uuid,) in rows, "@@server_uuid is substituted into proxied statements"
    kinds = [(e["class"], e["event"]) for e in page if e]
    assert kinds[0] == ("connection", "connect")
    assert ("table_access", "insert") in kinds
    queries = [e["general_data"]["query"] for e in page if e and e["class"] == "general"]
    assert any(q.startswith("REPLACE INTO audit_archive.selfaudit_probe") for q in queries)
    assert all(e["account"]["user"] == "archiver" for e in page if e)


def test_session_filter_id_and_filter_tables(emulator) -> None:
    conn = connect(emulator.archiver_dsn)
    try:
        filter_id = query(conn, "SELECT @@audit_log_filter_id")[0][0]
        rows = query(
            conn,
            "SELECT f.NAME, u.USER FROM mysql.audit_log_user u JOIN mysql.audit_log_filter f ON f.NAME = u.FILTERNAME ORDER BY u.USER",
        )
    finally:
        conn.close()
    assert rows == [("log_all", "%"), ("log_nothing", "archiver")]
    assert filter_id == 2, "log_nothing was the second filter defined"


def test_a_client_vanishing_mid_result_leaves_the_server_serving(emulator) -> None:
    emulator.writer.write(
        {"class": "general", "event": "status", "general_data": {"query": "z" * 3_000_000}}
    )
    pure = mysql.connect(emulator.archiver_dsn, use_pure=True, autocommit=True)
    pure.cmd_query("SET SESSION audit_log_read_buffer_size = 4194304")
    pure.cmd_query("""SELECT audit_log_read('{"start": {"timestamp": "2000-01-01"}}')""")
    sock = pure._socket.sock  # only the header was read: megabytes are still on their way
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    raw = socket.create_connection(("127.0.0.1", emulator.port))
    raw.recv(1024)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    raw.close()  # and one that leaves in the middle of the handshake
    other = connect(emulator.archiver_dsn)
    try:
        assert query(other, "SELECT 1 + 1") == [(2,)]
        query(other, f"SET SESSION audit_log_read_buffer_size = {MB4}")
        assert len(read(other, '{"start": {"timestamp": "2000-01-01"}}')) > 3_000_000
    finally:
        other.close()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT audit_log_read('{\"max_array_length\": 0}', 2)",
        "SELECT audit_log_read(",
        "SELECT audit_log_filter_set_filter('x')",
        "SELECT audit_log_read_bookmark(1)",
        "SET SESSION audit_log_read_buffer_size = 'big'",
        "SET GLOBAL audit_log_format = 'OLD'",
        "SELECT @@global.audit_log_filter_id",
        "SHOW VARIABLES LIKE",
        "SELECT audit_log_filter_set_user(NULL, NULL)",
        "\x00\xff garbage",
    ],
)
def test_malformed_statements_get_errors_and_the_session_goes_on(emulator, sql: str) -> None:
    conn = connect(emulator.archiver_dsn)
    try:
        with pytest.raises(mysql.Error):
            query(conn, sql)
        assert query(conn, "SELECT 40 + 2") == [(42,)]
    finally:
        conn.close()


def test_servers_side_by_side_stay_apart(emulator_factory) -> None:
    a, b = emulator_factory(), emulator_factory("percona")
    a.writer.write({"class": "a", "event": "x"})
    results = {}

    def probe(handle, key):
        conn = connect(handle.archiver_dsn)
        try:
            results[key] = (
                query(conn, "SELECT @@server_uuid")[0][0],
                read(conn, '{"start": {"timestamp": "2000-01-01"}}'),
            )
        finally:
            conn.close()

    threads = [threading.Thread(target=probe, args=(h, k)) for k, h in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["a"][0] == a.server_uuid and results["b"][0] == b.server_uuid != a.server_uuid
    assert len(json.loads(results["a"][1])) == 2 and json.loads(results["b"][1]) == [None]


def test_audit_log_rotate_and_reading_across_files(emulator) -> None:
    emulator.writer.write({"class": "a", "event": "x"})
    conn = connect(emulator.archiver_dsn)
    try:
        name = query(conn, "SELECT audit_log_rotate()")[0][0]
        emulator.writer.write({"class": "b", "event": "y"})
        page = json.loads(read(conn, '{"start": {"timestamp": "2000-01-01"}}'))
    finally:
        conn.close()
    assert (emulator.log_dir / name.decode()).exists()
    assert [e and e["class"] for e in page] == ["a", "b", None]


def test_proxied_transactions_and_warnings(emulator, mysql_db) -> None:
    conn = mysql.connect(emulator.dsn("admin"))
    try:
        cur = conn.cursor()
        cur.execute(f"CREATE TABLE `{mysql_db.database}`.t (a TINYINT)")
        cur.execute(f"INSERT INTO `{mysql_db.database}`.t VALUES (1)")
        conn.rollback()
        cur.execute(f"INSERT IGNORE INTO `{mysql_db.database}`.t VALUES (1000)")
        assert cur.warning_count == 1
        cur.execute("SHOW WARNINGS")
        assert cur.fetchall()[0][1] == 1264
        conn.commit()
        cur.execute(f"SELECT a FROM `{mysql_db.database}`.t")
        assert cur.fetchall() == [(127,)]
        cur.close()
    finally:
        conn.close()


def test_the_manuals_examples_work(emulator) -> None:
    for i in range(3):
        emulator.writer.write({"class": "general", "event": "status", "n": i})
    conn = connect(emulator.archiver_dsn)
    try:
        page = json.loads(query(conn, "SELECT audit_log_read(audit_log_read_bookmark())")[0][0])
        assert [e and e["n"] for e in page] == [2, None]
        query(conn, "SET @mark := audit_log_read_bookmark()")
        query(conn, "SET @mark := JSON_SET(CONVERT(@mark USING utf8mb4), '$.max_array_length', 1)")
        page = json.loads(query(conn, "SELECT audit_log_read(@mark)")[0][0])
        assert [e["n"] for e in page] == [2]
        ident = query(conn, "SELECT JSON_EXTRACT(audit_log_read_bookmark(), '$.id') AS i")[0][0]
        assert int(ident) == 2
        assert query(conn, "SELECT CONNECTION_ID() > 0, CURRENT_USER()") == [(1, "archiver@%")]
    finally:
        conn.close()


def test_tls_is_offered_and_logged_as_ssl(emulator_factory) -> None:
    handle = emulator_factory(tls=True)
    conn = mysql.connect(handle.dsn("app"), ssl_disabled=False, ssl_verify_cert=False)
    try:
        assert query(conn, "SELECT 7") == [(7,)]
    finally:
        conn.close()
    admin = connect(handle.archiver_dsn)
    try:
        page = json.loads(read(admin, '{"start": {"timestamp": "2000-01-01"}}'))
    finally:
        admin.close()
    types = {
        e["connection_data"]["connection_type"] for e in page if e and e["class"] == "connection"
    }
    assert types == {"ssl"}


@pytest.mark.parametrize("flavor", ["oracle", "percona"])
def test_component_variables_are_dotted(emulator_factory, flavor: str) -> None:
    handle = emulator_factory(flavor, component=True)
    handle.writer.write({"class": "general", "event": "status"})
    base = "audit_log_filter" if flavor == "percona" else "audit_log"
    scope = "GLOBAL" if flavor == "percona" else "SESSION"
    conn = connect(handle.archiver_dsn)
    try:
        names = dict(query(conn, "SHOW VARIABLES LIKE 'audit_log%'"))
        assert names[f"{base}.format"] == "JSON" and f"{base}.read_buffer_size" in names
        assert not any(n.startswith(f"{base}_") for n in names)
        cur = conn.cursor()
        cur.execute(f"SET {scope} {base}.read_buffer_size = 100")
        assert cur.warning_count == 1
        cur.close()
        assert query(conn, f"SELECT @@{scope.lower()}.{base}.read_buffer_size") == [(32768,)]
        with pytest.raises(mysql.Error) as info:
            query(conn, f"SELECT @@{base}_read_buffer_size")
        assert info.value.errno == 1193
        assert json.loads(read(conn, '{"start": {"timestamp": "2000-01-01"}}'))[-1] is None
    finally:
        conn.close()


def test_prepared_statements(emulator) -> None:
    emulator.writer.write({"class": "general", "event": "status"})
    conn = mysql.connect(emulator.archiver_dsn, autocommit=True)
    try:
        cur = conn.cursor(prepared=True)
        cur.execute("SELECT audit_log_read(?)", ('{"start": {"timestamp": "2000-01-01"}}',))
        (page,) = cur.fetchall()[0]
        assert json.loads(page)[-1] is None
        cur.execute("SELECT ? + 1", (41,))
        assert int(cur.fetchall()[0][0]) == 42
        with pytest.raises(mysql.Error) as info:
            cur.execute("SELECT audit_log_read()")
        assert info.value.errno == 3200
        cur.close()
    finally:
        conn.close()


def test_mixed_select_lists_keep_column_names(emulator) -> None:
    conn = connect(emulator.archiver_dsn)
    try:
        cur = conn.cursor()
        cur.execute("SELECT @@server_uuid, 1 + 1 AS two, @@version_comment FROM DUAL WHERE 1 = 1")
        row = cur.fetchall()[0]
        assert [d[0] for d in cur.description] == ["@@server_uuid", "two", "@@version_comment"]
        assert row == (emulator.server_uuid, 2, "MySQL Enterprise Server - Commercial")
        cur.execute("SELECT @@version_comment LIMIT 1")
        assert cur.fetchall() == [("MySQL Enterprise Server - Commercial",)]
        cur.close()
    finally:
        conn.close()


@pytest.mark.long
@pytest.mark.parametrize("flavor", ["oracle", "percona"])
def test_a_large_corpus_reads_back_complete_in_4mb_pages(emulator_factory, flavor: str) -> None:
    from emulator.traffic import write_events

    handle = emulator_factory(flavor)
    count = write_events(handle.writer, 5_000, seed=11, oversized_share=0.01)
    handle.writer.flush()
    conn = connect(handle.archiver_dsn)
    seen, skipped = 0, set()
    last = ("", -1)
    try:
        if flavor == "oracle":
            query(conn, f"SET SESSION audit_log_read_buffer_size = {MB4}")
        else:
            query(conn, f"SET GLOBAL audit_log_filter_read_buffer_size = {MB4}")
        cur = conn.cursor()
        cur.execute("SELECT audit_log_read(%s)", ('{"start": {"timestamp": "2000-01-01"}}',))
        while True:
            page = cur.fetchall()[0][0]
            cur.execute("SHOW WARNINGS")
            for _, _, message in cur.fetchall():
                skipped.add(
                    message.split('"id": ')[1].split("}")[0]
                    + message.split('"timestamp": "')[1][:19]
                )
            events = json.loads(page)
            for e in events:
                if e is None:
                    continue
                key = (e["timestamp"], e["id"])
                assert key > last
                last = key
                seen += 1
            if events and events[-1] is None:
                break
            cur.execute("SELECT audit_log_read()")
        cur.close()
    finally:
        conn.close()
    assert seen + len(skipped) == count
    assert (len(skipped) > 0) == (flavor == "oracle")


def test_kill_acts_on_the_emulators_own_connections(emulator) -> None:
    victim = connect(emulator.dsn("app"))
    killer = connect(emulator.dsn("admin"))
    other = connect(emulator.dsn("app"))
    try:
        (victim_id,) = query(victim, "SELECT CONNECTION_ID()")[0]
        with pytest.raises(mysql.Error) as info:
            query(killer, "KILL 999999")
        assert info.value.errno == 1094
        admin_id = query(killer, "SELECT CONNECTION_ID()")[0][0]
        with pytest.raises(mysql.Error) as info:
            query(other, f"KILL {admin_id}")
        assert info.value.errno == 1095
        query(killer, f"KILL {victim_id}")
        with pytest.raises(mysql.Error):
            query(victim, "SELECT 1")
        assert query(killer, "SELECT 2") == [(2,)]
    finally:
        for c in (victim, killer, other):
            with contextlib.suppress(mysql.Error):
                c.close()


def test_message_events_and_change_user(emulator) -> None:
    conn = mysql.connect(emulator.dsn("app"), autocommit=True)
    try:
        assert query(
            conn, "SELECT audit_api_message_emit_udf('comp', 'prod', 'hello ✓', 'k', 'v')"
        ) == [("OK",)]
        with pytest.raises(mysql.Error) as info:
            query(conn, "SELECT audit_api_message_emit_udf('comp', 'prod')")
        assert info.value.errno == 1123
        conn.cmd_change_user(username="admin", password="admin-pw")
    finally:
        conn.close()
    admin = connect(emulator.archiver_dsn)
    try:
        page = json.loads(read(admin, '{"start": {"timestamp": "2000-01-01"}}'))
    finally:
        admin.close()
    (msg,) = [e for e in page if e and e["class"] == "message"]
    assert msg["message_data"] == {
        "component": "comp",
        "producer": "prod",
        "message": "hello ✓",
        "map": {"k": "v"},
    }
    events = [
        (e["class"], e["event"], e["account"]["user"])
        for e in page
        if e and e["class"] == "connection"
    ]
    assert events[:2] == [("connection", "connect", "app"), ("connection", "change_user", "admin")]


@pytest.mark.parametrize("use_pure", [False, True])
def test_a_stock_mysql8_client_connects_with_its_default_collation(emulator, use_pure) -> None:
    """mysql-connector-python 9.x sends SET NAMES ... utf8mb4_0900_ai_ci; a real server accepts it."""
    import mysql.connector

    dsn = emulator.archiver_dsn
    conn = mysql.connector.connect(
        host=dsn.host,
        port=dsn.port,
        user=dsn.user,
        password=dsn.password.get_secret_value(),
        use_pure=use_pure,
    )
    try:
        cur = conn.cursor()
        cur.execute("SELECT @@server_uuid")
        assert cur.fetchall() == [(emulator.server_uuid,)]
    finally:
        conn.close()
