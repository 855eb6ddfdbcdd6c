r"""Avro body → ``audit_data`` row and its ``LOAD DATA`` line, without the record dict.

``compile_row_reader(schema)`` generates (as Python source, compiled once) one function::

    read(value, start, partition, offset) -> (identity, row, line)

that reads the Avro body of the CURRENT ``audit_event`` schema at ``start`` of ``value`` and
returns exactly what the reference path gives for it::

    record = codec.decode(value)                  # fastavro / schemas.compiled
    ident = rows.identity(record)
    row = rows.audit_row(record, ident, partition, offset)
    line = rows.load_data_line(row).encode()  # UTF-8, as the LOAD DATA file holds it

Each column is written in ``AUDIT_COLUMNS`` order with ``rows._field``'s formatting inlined
(the four escapes, ``\N`` for NULL, ``repr`` of floats, JSON via ``orjson`` like ``rows._json``).
The string columns are tested for the four escaped characters once, all together; only a row
that holds one (~15 % of the bench corpus, mostly ``raw`` with JSON escapes) escapes per column.

Traps:

- ``Fallback`` (every error becomes one) means "use the reference path": a body the generated
  decoder refuses, a timestamp ``identity`` would refuse (the reference gives the dead letter
  with its message). The caller checks the message key (``check_key``) itself, and only calls
  this for values framed with the current schema's fingerprint: older writers need resolution.
- A column added to ``AUDIT_COLUMNS`` or a field to the schema must be added here (``_COLUMN``);
  otherwise ``compile_row_reader`` raises ``Unsupported`` and the reference path is used.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson

from consumer.rows import _MAX_TS, _MIN_TS, AUDIT_COLUMNS, Identity
from schemas import compiled
from schemas.compiled import Unsupported

RowReader = Callable[[bytes, int, int, int], tuple[Identity, tuple[Any, ...], bytes]]
#: The compiled reader's ``line`` method: ``(identity, server_uuid, line)``, no row values.
LineReader = Callable[[bytes, int, int, int], tuple[Identity, str | None, bytes]]

#: Schema field each column comes from (columns not listed come from the arguments).
_COLUMN = {"ts": "timestamp"}
_ARGUMENTS = {"kafka_partition": "partition", "kafka_offset": "offset"}
_JSON = {"connection_attributes", "startup_args", "message_map"}
_EPOCH = datetime(1970, 1, 1)  # noqa: DTZ001 - naive UTC, as identity returns it
_MIN_MS = compiled.millis(_MIN_TS)
_MAX_MS = compiled.millis(_MAX_TS)


@lru_cache(maxsize=8192)
def _timestamp(ms: int) -> tuple[datetime, str]:
    """Naive UTC datetime and its LOAD DATA text of a whole-second ``ms`` in range."""
    ts = _EPOCH + timedelta(milliseconds=ms)
    return ts, ts.isoformat(" ")


def _escape(value: str) -> str:
    """``rows._field``'s four replaces, each only when its character is there.

    ``in`` is a memchr and a replace copies the whole string: an escaped ``raw`` of the bench
    corpus took 12.5 µs with all four replaces, 6.6 µs like this.
    """
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    if "\t" in value:
        value = value.replace("\t", "\\t")
    if "\n" in value:
        value = value.replace("\n", "\\n")
    if "\0" in value:
        value = value.replace("\0", "\\0")
    return value


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _text_lines(v: str, s: str, nullable: bool) -> list[str]:
    """Lines setting ``s`` to the LOAD DATA text of string local ``v``."""
    check = f'"\\\\" in {v} or "\\t" in {v} or "\\n" in {v} or "\\0" in {v}'
    lines = [f"    {s} = _escape({v}) if {check} else {v}"]
    if nullable:
        lines = [f"    if {v} is None: {s} = '\\\\N'", "    else:", "    " + lines[0]]
    return lines


def _checked_fields(schema: Any) -> list[tuple[str, bool, str]]:
    """``schema``'s fields, checked against ``AUDIT_COLUMNS`` as both readers expect them.

    Raises:
        Unsupported: the schema's fields and ``AUDIT_COLUMNS`` do not match as expected.
    """
    fields = compiled.record_fields(schema)
    kinds = {name: (nullable, kind) for name, nullable, kind in fields}
    wanted = {_COLUMN.get(c, c) for c in AUDIT_COLUMNS if c not in _ARGUMENTS}
    if wanted != set(kinds):
        raise Unsupported(f"columns and fields differ: {sorted(wanted ^ set(kinds))}")
    fixed = {
        "server_uuid": (False, "string"),
        "timestamp": (False, "timestamp-millis"),
        "id": (False, "long"),
        "raw": (False, "string"),
    }
    for name, expect in fixed.items():
        if kinds[name] != expect:
            raise Unsupported(f"{name} is {kinds[name]}, the fused reader expects {expect}")
    for name in _JSON:
        nullable, kind = kinds[name]
        if kind not in ("map", "array") or not nullable:
            raise Unsupported(f"{name} is {kind}, not JSON")
    return fields


def native_row_reader(schema: Any) -> RowReader:
    """The compiled fused reader for ``schema`` (``consumer.nativerow``): the same contract.

    Raises:
        Unsupported: the schema does not fit (as for ``compile_row_reader``), or the extension
            is not built (no C compiler at install time); the caller uses the Python reader.
    """
    fields = _checked_fields(schema)
    try:
        from consumer import nativerow  # optional: built only where a C compiler was
    except ImportError as exc:
        raise Unsupported(f"the compiled reader is not built: {exc}") from exc
    index = {name: i for i, (name, _, _) in enumerate(fields)}
    sources = nativerow.SOURCES
    reader: RowReader = nativerow.RowReader(
        [(nativerow.KINDS[kind], nullable, name in _JSON) for name, nullable, kind in fields],
        [sources[c] if c in sources else index[c] for c in AUDIT_COLUMNS],
        index["timestamp"],
        index["id"],
        _MIN_MS,
        _MAX_MS,
        compiled.Fallback,
        Identity,
        _timestamp,
        orjson.dumps,
    )
    return reader


def compile_row_reader(schema: Any) -> RowReader:
    """The fused reader for ``schema`` (the parsed current ``audit_event`` schema).

    Raises:
        Unsupported: the schema's fields and ``AUDIT_COLUMNS`` do not match as expected.
    """
    fields = _checked_fields(schema)
    kinds = {name: (nullable, kind) for name, nullable, kind in fields}
    src = ["def read(buf, p, partition, offset):", "    end = len(buf)"]
    for i, (name, nullable, kind) in enumerate(fields):
        if name == "timestamp":
            kind = "long"  # the millis: validated and converted below, as identity does
        pad = "    "
        if nullable:
            src += [
                "    _t = buf[p]; p += 1",
                f"    if _t == 0: f{i} = None",
                "    elif _t != 2: raise Fallback",
                "    else:",
            ]
            pad = "        "
        compiled._decode_lines(kind, f"f{i}", src, pad)  # the decoder's own lines
    src.append("    if p > end: raise Fallback")
    index = {name: i for i, (name, _, _) in enumerate(fields)}
    ts = f"f{index['timestamp']}"
    src += [
        f"    if {ts} % 1000 or not _MIN_MS <= {ts} <= _MAX_MS: raise Fallback",
        f"    ts, s_ts = _timestamp({ts})",
        f"    ident = Identity(ts, f{index['id']})",
    ]
    row: list[str] = []
    texts: list[str] = []
    escaped: list[str] = []  # the string columns' statements with the four escapes
    plain: list[str] = []  # the line's statements without the escapes (the common case)
    strings: list[str] = []  # the string columns' values, '' for NULL
    for column in AUDIT_COLUMNS:
        s = f"s_{column}"
        texts.append(s)
        if column in _ARGUMENTS:
            row.append(_ARGUMENTS[column])
            src.append(f"    {s} = str({_ARGUMENTS[column]})")
            continue
        if column == "ts":
            row.append("ts")
            continue
        name = column
        v = f"f{index[name]}"
        nullable, kind = kinds[name]
        if column in _JSON:
            if kind not in ("map", "array") or not nullable:
                raise Unsupported(f"{name} is {kind}, not JSON")
            src.append(f"    {v} = None if {v} is None else _json({v})")
            kind = "string"
        row.append(v)
        if kind == "string":
            strings.append(f"{v} or ''" if nullable else v)
            plain.append(
                f"    {s} = '\\\\N' if {v} is None else {v}" if nullable else f"    {s} = {v}"
            )
            escaped += _text_lines(v, s, nullable)
        elif kind == "long":
            null = f"'\\\\N' if {v} is None else " if nullable else ""
            src.append(f"    {s} = {null}str({v})")
        elif kind == "double":
            src.append(f"    {s} = '\\\\N' if {v} is None else repr({v})")
        else:
            raise Unsupported(f"no LOAD DATA text for {name} ({kind})")
    # One test for all string columns (the common case holds none of the four characters);
    # ``in`` is a memchr, so four scans of their concatenation cost less than four per column.
    check = "_j"
    src.append(f"    _j = ''.join(({', '.join(strings)},))")
    src.append(
        f'    if "\\\\" in {check} or "\\t" in {check} or "\\n" in {check} or "\\0" in {check}:'
    )
    src += ["    " + line for line in escaped]
    src.append("    else:")
    src += ["    " + line for line in plain]
    src.append(f"    line = ('\\t'.join(({', '.join(texts)},)) + '\\n').encode()")
    src.append(f"    row = ({', '.join(row)},)")
    src.append("    return ident, row, line")
    scope = compiled.namespace()
    scope.update(
        {
            "Identity": Identity,
            "_MIN_MS": _MIN_MS,
            "_MAX_MS": _MAX_MS,
            "_timestamp": _timestamp,
            "_escape": _escape,
            "_json": _json,
        }
    )
    source = "\n".join(compiled.guarded(src)) + "\n"
    exec(compile(source, "<fused audit_data row reader>", "exec"), scope)  # noqa: S102
    reader: RowReader = scope["read"]
    return reader
