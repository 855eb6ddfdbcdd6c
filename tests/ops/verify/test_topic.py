"""The topic reader on the real broker: re-sends are fine, a forged or missing message is named."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from confluent_kafka import Producer

from auditstream.errors import BrokerError
from auditstream.kafka import TopicSpec, ensure_topics
from ops.verify import topic, verify
from schemas.codec import SingleObjectCodec
from tests.ops.verify.conftest import A, B, chained_records

CODEC = SingleObjectCodec()
Records = list[tuple[str, dict[str, Any]]]


@pytest.fixture
def topics(bootstrap: str, unique_name: Callable[[str], str]) -> dict[str, str]:
    names = {"events": unique_name("ev"), "control": unique_name("ctl"), "dlq": unique_name("dlq")}
    ensure_topics({"bootstrap.servers": bootstrap}, [TopicSpec(n, 2, 1) for n in names.values()])
    return names


def publish(
    bootstrap: str, topics: dict[str, str], records: Records, headers: Any = None, dlq: bool = False
) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True})
    for name, record in records:
        where = topics["dlq"] if dlq else topics["events" if name == "audit_event" else "control"]
        producer.produce(
            where,
            CODEC.encode(name, record, where),
            key=record["server_uuid"].encode(),
            headers=headers,
        )
    assert producer.flush(30) == 0


def read(bootstrap: str, topics: dict[str, str]) -> Any:
    conf = {"bootstrap.servers": bootstrap}
    return verify(
        topic.read(conf, topics["events"], topics["control"], topics["dlq"], idle_timeout=20)
    )


def test_an_intact_topic_with_re_sends_after_a_restart(
    bootstrap: str, topics: dict[str, str]
) -> None:
    a, b = chained_records(A), chained_records(B, 6)
    # the producer of A crashed after 20 links and re-sent 15.. after its restart
    publish(bootstrap, topics, a[:20] + b + a[15:])
    report = read(bootstrap, topics)
    assert report.intact, [str(f) for f in report.findings]
    assert report.servers[A].links == 32 and report.servers[A].resent == 5
    assert report.servers[B].links == 6


def test_a_forged_message_is_named_by_partition_and_offset(
    bootstrap: str, topics: dict[str, str]
) -> None:
    a = chained_records(A)
    name, record = a[8]
    event = orjson.loads(record["raw"])
    event["login"]["user"] = "someone_else"
    a[8] = (name, {**record, "raw": orjson.dumps(event).decode()})
    publish(bootstrap, topics, a)
    report = read(bootstrap, topics)
    [f] = report.findings
    assert (f.kind, f.seq) == ("altered", 9)
    assert f.where.startswith(topics["events"] + "/") and f.where.endswith("@8")


def test_a_missing_message_and_a_missing_gap(bootstrap: str, topics: dict[str, str]) -> None:
    a = chained_records(A)
    publish(bootstrap, topics, a[:4] + a[5:11] + a[12:])  # event seq 5 and the gap (seq 12) lost
    findings = read(bootstrap, topics).findings
    assert [(f.kind, f.seq) for f in findings] == [("deleted", 6), ("deleted", 13)]


def test_dead_letters_carry_their_origin(bootstrap: str, topics: dict[str, str]) -> None:
    a = chained_records(A, 6)
    publish(bootstrap, topics, a[:3] + a[4:])
    headers = [("dlq.source.topic", topics["events"].encode()), ("dlq.source.partition", b"1"),
               ("dlq.source.offset", b"3"), ("dlq.error.class", b"InvalidRecord")]  # fmt: skip
    publish(bootstrap, topics, [a[3]], headers=headers, dlq=True)
    report = read(bootstrap, topics)
    assert report.intact
    [f] = report.findings
    assert f.kind == "dead_lettered" and f.seq == 4
    assert f.where.endswith(f"(dead letter of {topics['events']}/1@3)")


def test_missing_control_and_dead_letter_topics_are_empty_but_the_event_topic_must_exist(
    bootstrap: str, topics: dict[str, str], unique_name: Callable[[str], str]
) -> None:
    publish(bootstrap, topics, [r for r in chained_records(A) if r[0] == "audit_event"][:5])
    conf = {"bootstrap.servers": bootstrap}
    report = verify(
        topic.read(
            conf, topics["events"], unique_name("none"), unique_name("none"), idle_timeout=20
        )
    )
    assert report.intact and report.servers[A].links == 5
    with pytest.raises(BrokerError, match="no such topic"):
        list(topic.read(conf, unique_name("none"), idle_timeout=20))
