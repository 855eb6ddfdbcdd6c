"""Smoke tests: the fixtures start real components, and fail loudly when they cannot."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from auditstream import mysql as db
from auditstream.dsn import MySQLDsn
from auditstream.kafka import check


def test_broker_acks_idempotent_produce_and_group_read(
    bootstrap: str, unique_name, consumer_conf: dict[str, Any]
) -> None:
    topic = unique_name("smoke")
    admin = AdminClient({"bootstrap.servers": bootstrap})  # keep a reference: futures need it
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(30)

    acked: list[tuple[bytes, int]] = []
    errors: list[Any] = []

    def on_delivery(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(err)
        else:
            acked.append((msg.value(), msg.offset()))

    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    for i in range(100):
        producer.produce(topic, key=b"server-a", value=b"event-%d" % i, on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(30) == 0
    assert errors == []
    assert len(acked) == 100

    consumer = Consumer(consumer_conf)
    consumer.subscribe([topic])
    seen: list[bytes] = []
    try:
        for _ in range(200):
            msg = check(consumer.poll(0.5))
            if msg is not None:
                seen.append(msg.value())
            if len(seen) == 100:
                break
        consumer.commit(asynchronous=False)
        committed = consumer.committed(consumer.assignment(), timeout=10)
    finally:
        consumer.close()
    # One key, one partition, in order.
    assert seen == [b"event-%d" % i for i in range(100)]
    assert sum(tp.offset for tp in committed if tp.offset > 0) == 100


def test_database_creates_table_and_inserts_rows(mysql_db: MySQLDsn) -> None:
    conn = db.connect(mysql_db)
    try:
        cur = conn.cursor()
        cur.execute("CREATE TABLE t (id BIGINT UNSIGNED PRIMARY KEY, query MEDIUMTEXT NOT NULL)")
        cur.executemany(
            "INSERT INTO t VALUES (%s, %s)", [(i, f"select {i} ‘q’") for i in range(50)]
        )
        conn.commit()
        cur.execute("SELECT COUNT(*), MAX(id), MIN(query) FROM t")
        assert cur.fetchone() == (50, 49, "select 0 ‘q’")
    finally:
        conn.close()


def test_c_extension_is_used(mysql_db: MySQLDsn) -> None:
    conn = db.connect(mysql_db)
    try:
        assert type(conn).__name__ == "CMySQLConnection"
    finally:
        conn.close()
