import orjson

from bench import baseline
from tests.bench.test_limits import sample_events


def test_shred_keeps_the_predecessors_34_columns_and_faults():
    events = [orjson.loads(e) for e in sample_events()]
    rows = [baseline.shred("uuid-1", e) for e in events]
    assert all(len(r) == 34 for r in rows)
    names = ["server_uuid"] + [c for c, _, _ in baseline.COLUMNS]
    by_name = [dict(zip(names, r, strict=True)) for r in rows]
    # The path typo ($.genera_data.query) leaves every query NULL, as it did.
    assert all(r["query"] is None for r in by_name)
    connect = next(r for r in by_name if r["event"] == "connect")
    assert connect["_client_name"] == "libmysql"
    assert orjson.loads(connect["the_account"]) == {"user": "root", "host": "localhost"}
    status = next(r for r in by_name if r["command_status"] == "1064")
    assert status["query_status"] == 1064


def test_setup_creates_the_predecessors_tables(mysql_db):
    import mysql.connector

    baseline.setup(mysql_db)
    baseline.setup(mysql_db)  # idempotent, as the predecessor's CREATE ... IF NOT EXISTS
    conn = mysql.connector.connect(**mysql_db.connect_kwargs())
    cur = conn.cursor()
    cur.execute("SHOW COLUMNS FROM audit_data")
    assert len(cur.fetchall()) == 34
    conn.close()
