"""Step 2 of the consumer guarantee: messages → decoded records → rows, or dead letters.

Nothing here touches the database: a record that cannot be decoded (garbage bytes, an unknown
schema fingerprint, a corrupt body) or that fails validation (a timestamp MySQL cannot store
exactly, a key naming another server, an audit record on the control topic) becomes a dead letter
with its bytes intact. Rows the database then rejects are isolated by the sink.
"""

from __future__ import annotations

from typing import Any

from auditstream.errors import DecodeError
from consumer.batch import Batch, DeadLetter, Item
from consumer.rows import InvalidRecord, audit_row, check_key, control_row, identity
from consumer.sink import Prepared
from schemas import codec as avro
from schemas.registry import AUDIT_EVENT, CONTROL_EVENT


def item_of(msg: Any) -> Item:
    """A confluent-kafka ``Message`` as a batch item (headers as a list of byte pairs)."""
    headers = msg.headers()
    return Item(
        topic=msg.topic(),
        partition=msg.partition(),
        offset=msg.offset(),
        key=msg.key(),
        value=msg.value(),
        headers=[(k, v or b"") for k, v in headers] if headers else None,
    )


def decode_into(batch: Batch, item: Item, codec: avro.Codec) -> None:
    """Decode ``item`` and add it to ``batch``, as a record or as a dead letter."""
    try:
        item.schema, item.record = avro.decode(item.value, item.topic, codec)
    except DecodeError as exc:
        exc.context.update(partition=item.partition, offset=item.offset)
        batch.reject(item, exc)
        return
    batch.add(item)


def prepare(batch: Batch, control_topic: str) -> Prepared:
    """Rows for the sink from the batch's decoded records; invalid ones become dead letters."""
    out = Prepared(dead=list(batch.dead), next_offsets=batch.next_offsets())
    for item in batch.items:
        record = item.record
        assert record is not None  # noqa: S101 - only decoded items are in batch.items
        try:
            if item.topic == control_topic:
                _expect(item, CONTROL_EVENT)
                out.control.append(
                    (item, control_row(record, item.topic, item.partition, item.offset))
                )
            else:
                _expect(item, AUDIT_EVENT)
                check_key(record, item.key)
                ident = identity(record)
                out.audit.append(
                    (item, ident, audit_row(record, ident, item.partition, item.offset))
                )
        except (InvalidRecord, KeyError, TypeError, AttributeError) as exc:
            out.dead.append(DeadLetter(item, type(exc).__name__, str(exc)))
    return out


def _expect(item: Item, schema: str) -> None:
    if item.schema != schema:
        raise InvalidRecord(f"a {item.schema} record on topic {item.topic}")
