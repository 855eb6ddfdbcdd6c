"""The dead-letter topic on the real broker; a broker that cannot take letters moves nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from auditstream.dsn import MySQLDsn
from auditstream.embedded import free_port
from auditstream.errors import BrokerError, DeliveryError
from auditstream.kafka import producer_config
from consumer.batch import Batch, DeadLetter, Item
from consumer.decode import prepare
from consumer.dlq import DeadLetterQueue
from consumer.sink import Sink
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
