"""Decoded records → rows of ``audit_data`` / ``audit_control``, and rows → LOAD DATA text.

Validation here is only what the database cannot be trusted to refuse on its own: a DATETIME
silently rounds fractions of a second and MariaDB stores years outside MySQL's documented range,
both of which would change an event's identity ``(server_uuid, ts, id)``. Everything else (an
over-long value, a negative unsigned number, invalid JSON) is left to the strict SQL mode, which
rejects the row; the sink then isolates it and dead-letters it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson

#: Columns of audit_data the consumer writes, in this order (a subset of the template's).
AUDIT_COLUMNS: tuple[str, ...] = (
    "server_uuid", "ts", "id", "class", "event", "connection_id",
    "account_user", "account_host", "login_user", "login_os", "login_ip", "login_proxy",
    "connection_type", "connection_status", "connection_db", "connection_attributes",
    "command", "sql_command", "query", "status", "table_db", "table_name",
    "server_id", "os_version", "mysql_version", "startup_args",
    "query_time", "rows_sent", "rows_examined", "bytes_received", "bytes_sent",
    "message_component", "message_producer", "message", "message_map", "unix_time",
    "raw", "kafka_partition", "kafka_offset", "chain", "chain_seq",
)  # fmt: skip


class ControlRow(NamedTuple):
    """One ``audit_control`` row (``sql/archive/audit_control.sql``), in column order.

    A tuple, so the driver and ``load_data_line`` take it as it is; ``at`` is naive UTC.
    """

    topic: str
    kafka_partition: int
    kafka_offset: int
    server_uuid: str
    kind: str
    at: datetime
    bookmark_timestamp: str | None = None
    bookmark_id: int | None = None
    reason: str | None = None
    from_timestamp: str | None = None
    from_id: int | None = None
    to_timestamp: str | None = None
    to_id: int | None = None
    events: int | None = None
    size: int | None = None
    sha256: str | None = None
    lag_seconds: float | None = None
    detail: str | None = None
    chain: str | None = None
    chain_seq: int | None = None
    checkpoint_seq: int | None = None
    signed_seq: int | None = None
    signed_chain: str | None = None
    key_id: str | None = None
    signature: str | None = None
    actor: str | None = None


#: Columns of audit_control the consumer writes, in this order (all of them).
CONTROL_COLUMNS: tuple[str, ...] = ControlRow._fields

_MIN_TS = datetime(1000, 1, 1, tzinfo=UTC)
_MAX_TS = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)


class InvalidRecord(ValueError):
    """A decoded record the archive must not store as it is (dead-lettered)."""


@dataclass(frozen=True, slots=True)
class Identity:
    """An event's identity, ordered by (ts, id) within one server."""

    ts: datetime
    id: int


def identity(record: Mapping[str, Any]) -> Identity:
    """The record's (ts, id), validated so that the DATETIME column keeps it exactly.

    Raises:
        InvalidRecord: a timestamp MySQL cannot store, or one with a fraction of a second.
    """
    ts = record["timestamp"]
    if not isinstance(ts, datetime) or ts.tzinfo is None:
        raise InvalidRecord(f"timestamp is not an aware datetime: {ts!r}")
    if not _MIN_TS <= ts <= _MAX_TS:
        raise InvalidRecord(f"timestamp {ts.isoformat()} is outside 1000-01-01..9999-12-31")
    if ts.microsecond:
        raise InvalidRecord(f"timestamp {ts.isoformat()} has a fraction of a second")
    return Identity(ts.astimezone(UTC).replace(tzinfo=None), record["id"])


def check_key(record: Mapping[str, Any], key: bytes | None) -> None:
    """The message key must be the record's server_uuid (it decides the partition, the order).

    Raises:
        InvalidRecord: the key names another server.
    """
    if key is not None and key != record["server_uuid"].encode():
        raise InvalidRecord("message key differs from the record's server_uuid")


def audit_row(
    record: Mapping[str, Any], ident: Identity, partition: int, offset: int
) -> tuple[Any, ...]:
    """One audit_data row in ``AUDIT_COLUMNS`` order (naive UTC datetime, JSON as text)."""
    get = record.get
    return (
        record["server_uuid"], ident.ts, ident.id,
        *(get(c) for c in AUDIT_COLUMNS[3:15]),
        _json(get("connection_attributes")),
        *(get(c) for c in AUDIT_COLUMNS[16:25]),
        _json(get("startup_args")),
        *(get(c) for c in AUDIT_COLUMNS[26:34]),
        _json(get("message_map")), get("unix_time"), record["raw"], partition, offset,
        get("chain"), get("chain_seq"),
    )  # fmt: skip


def control_row(record: Mapping[str, Any], topic: str, partition: int, offset: int) -> ControlRow:
    """One audit_control row of a decoded control event.

    Raises:
        InvalidRecord: ``at`` is not a time MySQL can store.
    """
    at = record["at"]
    if not isinstance(at, datetime) or not _MIN_TS <= at <= _MAX_TS:
        raise InvalidRecord(f"control event time {at!r} cannot be stored")
    values: dict[str, Any] = {c: record.get(c) for c in CONTROL_COLUMNS[3:]}
    values["at"] = at.astimezone(UTC).replace(tzinfo=None)
    return ControlRow(topic, partition, offset, **values)


def _json(value: object) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


# LOAD DATA's default escaping (FIELDS ESCAPED BY '\\'): these four characters, NULL as \N.


def load_data_text(rows: Sequence[Sequence[Any]]) -> bytes:
    r"""Rows as tab-separated text for ``LOAD DATA ... FIELDS TERMINATED BY '\t'``.

    Trap: every string goes through the escaping (a column may hold anything, ``\N`` included);
    ``datetime`` values must have no fraction of a second (``identity`` ensures it).
    """
    return "".join(map(load_data_line, rows)).encode("utf-8")


def load_data_line(row: Sequence[Any]) -> str:
    r"""One row of ``load_data_text``, ``\n`` included (built off the write path, see decode)."""
    return "\t".join(map(_field, row)) + "\n"


def _field(value: Any) -> str:
    kind = value.__class__
    if kind is str:
        # The hot path: most values need no escaping, and `in` is much cheaper than translate.
        if "\\" in value or "\t" in value or "\n" in value or "\0" in value:
            escaped: str = (
                value.replace("\\", "\\\\")
                .replace("\t", "\\t")
                .replace("\n", "\\n")
                .replace("\0", "\\0")
            )
            return escaped
        return value  # type: ignore[no-any-return]
    if value is None:
        return "\\N"
    if kind is datetime:
        return value.isoformat(" ")  # type: ignore[no-any-return]
    if kind is float:
        return repr(value)
    return str(value)
