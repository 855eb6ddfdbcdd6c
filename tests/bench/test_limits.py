from pathlib import Path

import mysql.connector

from bench import limits

SAMPLE = Path("/work/shared/samples/mysql-8.0.22-commercial-audit.log")


def sample_events() -> list[bytes]:
    lines = SAMPLE.read_bytes().splitlines()
    return [ln.rstrip().removesuffix(b",") for ln in lines if ln.startswith(b"{")]


def test_page_end_is_the_trailing_null():
    assert limits.ends_sequence(b"[\n{},\nnull\n]")
    assert limits.ends_sequence(b"[null]")
    assert not limits.ends_sequence(b"[\n{},\n{}\n]")


def test_load_data_stores_the_rows_the_consumer_would_write(mysql_db, tmp_path):
    events = sample_events()
    columns = limits.create_audit_data(mysql_db)
    path = tmp_path / "rows.tsv"
    path.write_bytes(limits.to_tsv("uuid-1", events, columns))

    rate = limits.load_data(mysql_db, [path], len(events), columns)

    assert rate.items == len(events) and rate.seconds > 0
    conn = mysql.connector.connect(**mysql_db.connect_kwargs())
    cur = conn.cursor()
    cur.execute("SELECT raw, query FROM audit_data ORDER BY ts, id")
    rows = cur.fetchall()
    conn.close()
    # The raw text survives the TSV escaping byte for byte (typographic quotes, <secret>, ...).
    assert sorted(r[0].encode() for r in rows) == sorted(events)
    assert any(r[1] and "<secret>" in r[1] for r in rows)


def test_raw_produce_waits_for_every_ack(bootstrap, consumer_conf, unique_name):
    from confluent_kafka import Consumer

    topic = unique_name("raw")
    events = sample_events()
    rate = limits.produce_raw(bootstrap, topic, b"uuid-1", events)
    assert rate.items == len(events)

    consumer = Consumer(consumer_conf)
    consumer.subscribe([topic])
    got = []
    for _ in range(200):
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            got.append(msg.value())
        if len(got) == len(events):
            break
    consumer.close()
    assert sorted(got) == sorted(events)


def test_interleave_gives_each_transaction_an_equal_run_of_every_server_in_order():
    servers = [[f"{s}{i}\n".encode() for i in range(7)] for s in "abc"]

    blobs = limits.interleave(servers, 6)

    assert blobs[0] == b"a0\na1\nb0\nb1\nc0\nc1\n"
    assert blobs[-1] == b"a6\nb6\nc6\n"
    # Every line once, each server's lines in their order.
    lines = [line for blob in blobs for line in blob.splitlines(keepends=True)]
    assert sorted(lines) == sorted(line for s in servers for line in s)
    for s in servers:
        assert [line for line in lines if line[:1] == s[0][:1]] == s


def test_interleave_of_uneven_servers_keeps_every_line():
    servers = [[b"x\n"] * 5, [b"y\n"] * 1, []]
    blobs = limits.interleave(servers, 4)
    assert b"".join(blobs).count(b"x") == 5 and b"".join(blobs).count(b"y") == 1
    assert limits.interleave([], 10) == []
