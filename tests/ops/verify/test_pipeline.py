"""The chain through the real consumer: topic → archive (with a re-send and a dead letter) → verify."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from auditstream.chain import ChainState
from auditstream.dsn import MySQLDsn
from auditstream.kafka import TopicSpec, ensure_topics
from auditstream.mysql import connect
from ops.cli import main
from schemas.mapping import to_record
from tests.harness.consumer_once import consume_once
from tests.ops.verify.conftest import A, B, chained_records
from tests.ops.verify.test_topic import publish

pytest.importorskip("consumer.__main__", reason="the consumer is not in this checkout")


def continued(
    records: list[tuple[str, dict[str, Any]]], *raws: str
) -> list[tuple[str, dict[str, Any]]]:
    """More events on the same chain (the producer chains whatever the log holds)."""
    last = records[-1][1]
    state = ChainState(A, last["chain"], last["chain_seq"])
    out = []
    for raw in raws:
        event = orjson.loads(raw)
        state = state.advance_event(event["timestamp"], event["id"], raw)
        out.append(("audit_event", to_record(A, raw, event, chain=state.hash, chain_seq=state.seq)))
    return out


def test_an_archived_pipeline_verifies_and_names_tampering(
    bootstrap: str,
    mysql_db: MySQLDsn,
    unique_name: Callable[[str], str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    names = {"events": unique_name("ev"), "control": unique_name("ctl"), "dlq": unique_name("dlq")}
    ensure_topics({"bootstrap.servers": bootstrap}, [TopicSpec(n, 2, 1) for n in names.values()])
    a = chained_records(A)
    # a year the archive cannot store: the consumer dead-letters it; the chain goes on after it
    a += continued(
        a, '{"timestamp": "0999-01-01 00:00:00", "id": 0, "class": "general", "event": "status"}'
    )
    a += continued(
        a, '{"timestamp": "2020-10-19 19:40:00", "id": 0, "class": "general", "event": "status"}'
    )
    publish(bootstrap, names, a[:20] + chained_records(B, 5) + a[15:])  # a producer re-sent 15..
    consume_once(bootstrap, mysql_db, names, unique_name("g"))
    dsn = mysql_db.url(reveal=True)
    kafka = ["--bootstrap-servers", bootstrap, "--topic", names["events"],
             "--control-topic", names["control"], "--dlq-topic", names["dlq"]]  # fmt: skip
    capsys.readouterr()

    assert main(["verify", "--archive-dsn", dsn, *kafka]) == 0
    out = capsys.readouterr().out
    assert f"server {A}: 34 links (seq 1..34" in out and f"server {B}: 5 links" in out
    # on the topic: links 16..20 sent twice, and the dead letter repeats link 33 (the archive
    # holds each event once, and the letter is the link it lacks)
    assert "6 re-sent, 0 dead-lettered" in out and "0 re-sent, 1 dead-lettered" in out
    [letter] = [x for x in out.splitlines() if "dead_lettered" in x]
    assert letter.startswith(
        f"  note dead_lettered: server={A} seq=33 bookmark=0999-01-01 00:00:00#0 at {names['dlq']}/"
    )

    conn = connect(mysql_db)
    cur = conn.cursor()
    cur.execute(
        "UPDATE audit_data SET raw = REPLACE(raw, 'audit_test', 'audit_tesT') WHERE chain_seq = 25"
    )
    cur.execute("DELETE FROM audit_data WHERE chain_seq = 10")
    conn.commit()
    conn.close()
    assert main(["verify", "--archive-dsn", dsn, *kafka]) == 1
    tampered = [x.split(" at ")[0] for x in capsys.readouterr().out.splitlines() if "TAMPER" in x]
    assert tampered == [
        f"  TAMPER deleted: server={A} seq=11 bookmark=2020-10-19 19:29:36#0",
        f"  TAMPER altered: server={A} seq=25 bookmark=2020-10-19 19:31:47#0",
    ]
