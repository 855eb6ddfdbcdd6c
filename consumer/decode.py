"""Step 2 of the consumer guarantee: messages → decoded records → rows, or dead letters.

Nothing here touches the database: a record that cannot be decoded (garbage bytes, an unknown
schema fingerprint or registry id, a corrupt body) or that fails validation (a timestamp MySQL
cannot store exactly, a key naming another server, an audit record on the control topic) becomes
a dead letter with its bytes intact. Rows the database then rejects are isolated by the sink.

Trap: a Schema Registry that cannot be reached is an outage, not poison. The codec reports both
as ``DecodeError``; ``prepare`` tells them apart by the cause and raises a retriable
``BrokerError`` for an outage, so the batch is kept and retried, never dead-lettered. Decoding
happens in ``prepare`` (not at poll time) for that reason. ``prepare`` drops each record once its
row is built (the loop holds two batches, and records are most of their memory), so a batch
retried after a failure is decoded again.

Fast path: an audit message in single-object encoding written with the current schema goes
straight from its Avro body to its row and ``LOAD DATA`` line (``consumer.fastrow``, compiled in
``consumer.nativerow`` when built; both proven equal to the path below), with no record dict.
Anything else, and anything that path refuses (a corrupt body, a timestamp ``identity`` rejects,
a key naming another server), takes the reference path, which gives the reference row or dead
letter.
"""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka.schema_registry.error import SchemaRegistryError

from auditstream.errors import BrokerError, DecodeError
from consumer.batch import Batch, DeadLetter, Item
from consumer.fastrow import LineReader, RowReader, compile_row_reader, native_row_reader
from consumer.rows import (
    InvalidRecord,
    audit_row,
    check_key,
    control_row,
    identity,
    load_data_line,
)
from consumer.sink import AuditRow, Prepared
from schemas import codec as avro
from schemas import registry
from schemas.compiled import Fallback, Unsupported
from schemas.registry import AUDIT_EVENT, CONTROL_EVENT

log = logging.getLogger(__name__)

#: Registry answers that mean "this value names a schema I do not have": the record is poison.
_POISON_STATUS = {404, 422}


def _row_reader() -> tuple[bytes, RowReader | None]:
    """The single-object header of the current audit_event schema and its fused reader.

    The compiled reader when it is built and fits the schema, else the generated Python one
    (the same results, ~4x the CPU per row), else none: every record takes the reference path.
    """
    current = registry.current(AUDIT_EVENT)
    header = avro.SINGLE_OBJECT_MARKER + registry.fingerprint64(current)
    try:
        return header, native_row_reader(current)
    except Unsupported as exc:
        log.warning("the compiled row reader is not used (%s): the Python one is slower", exc)
    try:
        return header, compile_row_reader(current)
    except Unsupported as exc:
        log.warning("no fused row reader (%s): every record is decoded by fastavro", exc)
        return header, None


_AUDIT_HEADER, _READ_ROW = _row_reader()
_BODY = len(_AUDIT_HEADER)
#: The compiled reader's line-only mode (``lines``: no row values are made), else None.
_READ_LINE: LineReader | None = getattr(_READ_ROW, "line", None)


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


def decode(item: Item, codec: avro.Codec) -> None:
    """Decode ``item`` once: sets ``schema``/``record``, or ``error`` for poison.

    Raises:
        BrokerError: the Schema Registry is unreachable or failing (retriable).
    """
    if item.record is not None or item.error is not None:
        return
    try:
        item.schema, item.record = avro.decode(item.value, item.topic, codec)
    except DecodeError as exc:
        if registry_outage(exc):
            raise BrokerError(f"schema registry unavailable: {exc.__cause__}") from exc
        exc.context.update(partition=item.partition, offset=item.offset)
        item.error = exc


def registry_outage(exc: DecodeError) -> bool:
    """True when ``exc`` comes from a registry that failed, not from a value it does not know."""
    cause = exc.__cause__
    if isinstance(cause, SchemaRegistryError):
        status = cause.http_status_code
        return status not in _POISON_STATUS
    names = {k.__name__ for k in type(cause).__mro__}
    return isinstance(cause, OSError) or bool(names & {"TransportError", "TimeoutException"})


def prepare(
    batch: Batch, control_topic: str, codec: avro.Codec, *, lines: bool = False
) -> Prepared:
    """Rows for the sink from the batch; undecodable or invalid records become dead letters.

    ``lines``: also build each audit row's ``LOAD DATA`` line here (UTF-8 bytes, the file's
    encoding), outside the transaction (the loop prepares batch N+1 while N is being written).

    Raises:
        BrokerError: the Schema Registry is unreachable (retry the batch later).
    """
    out = Prepared(next_offsets=batch.next_offsets())
    fast = _READ_ROW if isinstance(codec, avro.SingleObjectCodec) else None
    for item in batch.items:
        if fast is not None and item.topic != control_topic:
            done = _fast_audit(item, fast, lines)
            if done is not None:
                out.audit.append(done)
                continue
        decode(item, codec)
        if item.error is not None:
            out.dead.append(DeadLetter(item, type(item.error).__name__, str(item.error)))
            continue
        record = item.record
        assert record is not None  # noqa: S101 - decode sets record or error
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
                row = audit_row(record, ident, item.partition, item.offset)
                line = load_data_line(row).encode() if lines else None
                out.audit.append(AuditRow(item, ident, row[0], row, line))
        except (InvalidRecord, KeyError, TypeError, AttributeError) as exc:
            out.dead.append(DeadLetter(item, type(exc).__name__, str(exc)))
        item.record = None  # the row holds what is written; memory: two batches are held
    out.seal()  # here, off the writer thread (Prepared.seal)
    return out


def _fast_audit(item: Item, read: RowReader, lines: bool) -> AuditRow | None:
    """``item``'s audit row by the fused reader; None: take the reference path instead.

    With ``lines`` and the compiled reader, only the line is made (``AuditRow.row`` is None).
    """
    value = item.value
    if item.error is not None or value is None or not value.startswith(_AUDIT_HEADER):
        return None
    row: tuple[Any, ...] | None = None
    try:
        if lines and _READ_LINE is not None:
            ident, server, line = _READ_LINE(value, _BODY, item.partition, item.offset)
        else:
            ident, row, line = read(value, _BODY, item.partition, item.offset)
            server = row[0]
    except Fallback:  # the reference path gives the row or the dead letter
        return None
    if server is None or (item.key is not None and item.key != server.encode()):
        return None  # check_key's dead letter
    item.schema = AUDIT_EVENT
    return AuditRow(item, ident, server, row, line if lines else None)


def _expect(item: Item, schema: str) -> None:
    if item.schema != schema:
        raise InvalidRecord(f"a {item.schema} record on topic {item.topic}")
