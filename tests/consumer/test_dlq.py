"""The dead-letter topic on the real broker; a broker that cannot take letters moves nothing."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY

from auditstream.dsn import MySQLDsn
from auditstream.embedded import free_port
from auditstream.errors import BrokerError, DeliveryError
from auditstream.kafka import (
    MAX_MESSAGE_BYTES,
    TopicSpec,
    audit_topic_config,
    ensure_topics,
    producer_config,
    topic_max_message_bytes,
)
from consumer.batch import Batch, DeadLetter, Item
from consumer.decode import prepare
from consumer.dlq import HEADROOM, DeadLetterQueue
from consumer.sink import Sink
from ops.reconcile.keys import KeyRange
from ops.reconcile.topic import read_dead_letters
from schemas.codec import RegistryCodec
from tests.consumer.conftest import RecordFactory, query
from tests.consumer.kafkatools import CODEC, read_all


def test_letters_keep_key_value_headers_and_carry_the_error(
    bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topic = unique_name("dlq")
    DeadLetterQueue.ensure({"bootstrap.servers": bootstrap}, topic)
    dlq = DeadLetterQueue(producer_config(bootstrap, {}), topic)
    item = Item("mysql.audit.events", 4, 1234, b"server-a", b"\xc3\x01junk", [("trace", b"t-1")])
    before = datetime.now(UTC)
    dlq.send([DeadLetter(item, "DecodeError", "not Avro single-object encoding")])
    dlq.close()
    (msg,) = read_all(bootstrap, topic, 1)
    assert (msg.key(), msg.value()) == (b"server-a", b"\xc3\x01junk")
    headers = dict(msg.headers())
    assert headers["trace"] == b"t-1"
    assert headers["dlq.error.class"] == b"DecodeError"
    assert headers["dlq.error.message"] == b"not Avro single-object encoding"
    assert headers["dlq.source.topic"] == b"mysql.audit.events"
    assert (headers["dlq.source.partition"], headers["dlq.source.offset"]) == (b"4", b"1234")
    assert datetime.fromisoformat(headers["dlq.time"].decode()) >= before


def test_unreachable_dlq_rolls_the_batch_back_and_keeps_offsets(
    archive: MySQLDsn, records: RecordFactory
) -> None:
    """A broker outage is infrastructure: nothing is written, skipped or dead-lettered."""
    dead_broker = f"127.0.0.1:{free_port()}"
    dlq = DeadLetterQueue(
        producer_config(dead_broker, {"message.timeout.ms": "1500"}), "dlq", timeout=5
    )
    sink = Sink(archive, "m")
    expected = sink.stored_offsets([("audit", 0)])
    batch = Batch()
    for n, record in enumerate(records("s-1", 5)):
        batch.add(Item("audit", 0, n, b"s-1", CODEC.encode("audit_event", record, "audit"), None,
                       "audit_event", record))  # fmt: skip
    batch.add(Item("audit", 0, 5, b"s-1", b"garbage", None))
    try:
        with pytest.raises(DeliveryError) as err:
            sink.write(prepare(batch, "control", CODEC), expected, dlq.send)
        assert err.value.retriable
    finally:
        sink.close()
    assert query(archive, "SELECT COUNT(*) FROM audit_data") == [(0,)]
    assert query(archive, "SELECT next_offset FROM audit_offsets") == [(None,)]


def test_registry_outage_is_retriable_and_never_dead_lettered() -> None:
    """Confluent-framed values and a registry that does not answer: an outage, not poison."""
    codec = RegistryCodec(f"http://127.0.0.1:{free_port()}")
    batch = Batch()
    batch.add(Item("audit", 0, 0, b"s-1", b"\x00\x00\x00\x00\x07" + b"body", None))
    with pytest.raises(BrokerError) as err:
        prepare(batch, "control", codec)
    assert err.value.retriable
    assert batch.items[0].error is None  # still undecided: decoded again on the retry
    # An id the (reachable) registry does not know is poison.
    mock = RegistryCodec("mock://unknown-ids")
    prepared = prepare(batch, "control", mock)
    assert [d.error_class for d in prepared.dead] == ["DecodeError"]


def max_message_bytes(bootstrap: str, topic: str) -> int | None:
    return topic_max_message_bytes({"bootstrap.servers": bootstrap}, topic)


def test_a_new_dlq_topic_has_room_for_any_event_message_and_its_headers(
    bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    events, dlq = unique_name("events"), unique_name("dlq")
    admin = {"bootstrap.servers": bootstrap}
    ensure_topics(admin, [TopicSpec(events, 1, config=audit_topic_config(32 << 20))])
    assert DeadLetterQueue.ensure(admin, dlq, events_topic=events) == (32 << 20) + HEADROOM
    assert max_message_bytes(bootstrap, dlq) == (32 << 20) + HEADROOM
    # events topic not created yet (consumers started first): the producer's default
    later = unique_name("dlq")
    assert DeadLetterQueue.ensure(admin, later, events_topic=unique_name("none")) == (
        MAX_MESSAGE_BYTES + HEADROOM
    )


class Marks:
    def __init__(self) -> None:
        self.marks: list[tuple[str, str, str, int]] = []

    def mark(self, kind: str, server_uuid: str, ts: str, id_: int, what: str) -> None:
        self.marks.append((kind, server_uuid, ts, id_))


def test_a_letter_too_large_for_the_dlq_topic_becomes_a_reference(
    bootstrap: str, unique_name: Callable[[str], str], records: RecordFactory
) -> None:
    """A DLQ topic created smaller (by hand, an older release): no retrying for ever."""
    topic = unique_name("dlq")
    admin = {"bootstrap.servers": bootstrap}
    ensure_topics(admin, [TopicSpec(topic, 1, config=audit_topic_config(100_000))])
    limit = DeadLetterQueue.ensure(admin, topic, events_topic="mysql.audit.events")
    assert limit == 100_000  # an existing DLQ topic is left as it is
    dlq = DeadLetterQueue(
        producer_config(bootstrap, {}), topic, timeout=20, max_message_bytes=limit
    )
    (big,) = records("srv-big", 1)
    big["raw"] = big["raw"][:-1] + ', "pad": "' + "x" * 300_000 + '"}'
    value = CODEC.encode("audit_event", big, "events")
    items = [
        Item("events", 2, 77, b"srv-big", value, [("trace", b"t")], "audit_event", big),
        Item("events", 2, 78, b"srv-big", b"\xc3\x01junk", None),
    ]
    counted = REGISTRY.get_sample_value(
        "auditstream_consumer_dead_letter_references_total", {"topic": "events"}
    )
    dlq.send([DeadLetter(items[0], "ArchiveContentError", "row too large"),
              DeadLetter(items[1], "DecodeError", "not Avro")])  # fmt: skip
    dlq.close()
    reference, letter = read_all(bootstrap, topic, 2)
    assert letter.value() == b"\xc3\x01junk"  # the one that fits is an ordinary letter
    headers = dict(reference.headers())
    assert headers["dlq.payload"] == b"reference"
    assert headers["dlq.original.length"] == str(len(value)).encode()
    assert headers["dlq.original.sha256"] == hashlib.sha256(value).hexdigest().encode()
    assert headers["dlq.source.offset"] == b"77" and "trace" not in headers
    body = json.loads(reference.value())
    assert body["reference"] == {"topic": "events", "partition": 2, "offset": 77}
    assert body["reason"] == "ArchiveContentError: row too large"
    assert (
        REGISTRY.get_sample_value(
            "auditstream_consumer_dead_letter_references_total", {"topic": "events"}
        )
        == (counted or 0) + 1
    )
    # reconcile: the event is dead-lettered (its key is marked), not lost and not poison
    marks = Marks()
    result = read_dead_letters({"bootstrap.servers": bootstrap}, topic, marks, KeyRange(),
                               CODEC, idle_timeout=5)  # fmt: skip
    ts = body["event"]["timestamp"]
    assert ("dlq", "srv-big", ts, int(body["event"]["id"])) in marks.marks
    assert result.dead_letters == 2 and result.poison == [f"{topic}/0@1"]


@pytest.mark.real_kafka
def test_a_letter_the_broker_refuses_for_its_size_becomes_a_reference(
    bootstrap: str, unique_name: Callable[[str], str], records: RecordFactory
) -> None:
    """The client does not know the limit (no max_message_bytes): the broker refuses it."""
    topic = unique_name("dlq")
    admin = {"bootstrap.servers": bootstrap}
    ensure_topics(admin, [TopicSpec(topic, 1, config=audit_topic_config(100_000))])
    dlq = DeadLetterQueue(producer_config(bootstrap, {}), topic, timeout=20)
    (big,) = records("srv-big", 1)
    # Incompressible: the broker's limit applies to the compressed batch (zstd), and 300 kB of
    # zeros would fit in 100 kB.
    value = CODEC.encode("audit_event", big, "events") + os.urandom(300_000)
    item = Item("events", 0, 5, b"srv-big", value, None, "audit_event", big)
    dlq.send([DeadLetter(item, "ArchiveContentError", "row too large")])
    dlq.close()
    (reference,) = read_all(bootstrap, topic, 1)
    assert dict(reference.headers())["dlq.payload"] == b"reference"
