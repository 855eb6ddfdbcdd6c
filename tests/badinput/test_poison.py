"""Poison Kafka records among real events: each goes to the dead-letter topic with its bytes
intact; every real event is archived once; ``reconcile`` counts the poison and stays clean.
"""

from __future__ import annotations

import io

import fastavro
from confluent_kafka import Producer

from ops.verify.topic import messages
from schemas import registry
from tests.faults.pipeline import Pipeline


def poison_values() -> list[bytes]:
    """Garbage, an unknown fingerprint, a truncated body, a control event on the event topic."""
    body = io.BytesIO()
    fastavro.schemaless_writer(
        body, registry.current("control_event"), {"server_uuid": "x", "kind": "heartbeat", "at": 0}
    )
    audit = b"\xc3\x01" + registry.fingerprint64(registry.current("audit_event"))
    control = b"\xc3\x01" + registry.fingerprint64(registry.current("control_event"))
    return [
        b"",
        b"\x00\x01 garbage that is no Avro at all",
        b"\xc3\x01" + b"\x13" * 8 + body.getvalue(),
        audit + body.getvalue()[:3],
        control + body.getvalue(),
        b"\xc3\x01" + b"\xff" * 20_000,
    ]


def dead_letters(pipe: Pipeline) -> list[bytes]:
    """Every value in the dead-letter topic (read to its end)."""
    return [m.value() or b"" for m in messages({"bootstrap.servers": pipe.bootstrap}, pipe.dlq)]


def test_poison_records_are_dead_lettered_intact_and_nothing_is_lost(pipeline: Pipeline) -> None:
    pipeline.write(300)
    pipeline.producer_once("--batch-events", "100")
    producer = Producer({"bootstrap.servers": pipeline.bootstrap})
    for value in poison_values():
        producer.produce(pipeline.topic, key=pipeline.emu.server_uuid.encode(), value=value)
    assert producer.flush(30) == 0
    pipeline.write(100, seed=2)
    pipeline.producer_once("--batch-events", "100")
    pipeline.consumer_once()
    report = pipeline.assert_clean(400)
    assert report.keys["table"] == 400
    assert sorted(dead_letters(pipeline)) == sorted(poison_values())
    poisoned = report.counts.get(("poison", "topic"), 0)
    assert poisoned == len(poison_values())  # none of them names an event key
