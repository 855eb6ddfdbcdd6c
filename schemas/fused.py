"""A parsed audit event straight to ``AuditEvent`` Avro bytes, without the record dict.

``compile_event_encoder(schema)`` generates (as Python source, compiled once) one function::

    encode(server_uuid, raw, event, chain, chain_seq, header) -> bytes

returning exactly ``header`` + the body fastavro writes for
``to_record(server_uuid, raw, event, chain=chain, chain_seq=chain_seq)``; ``raw`` is the text
or its UTF-8 bytes (the producer passes the page's bytes: no decode and re-encode per event).
Each flat field is read from the event as ``schemas.mapping.to_record`` reads it (``SOURCES``
below) and written in schema order. The common values (exact ``str``, small ``int``,
``float``, ``None``) are handled inline; anything else goes through the mapping's own
converters (``_str``, ``_int``, ``_float``, ``_str_map``, ``_str_list``), so the type rules
live in one place.

Traps:

- ``Fallback`` (every error is turned into one) means "use the reference": the caller then runs
  ``to_record`` + the reference encoder, which gives the right bytes or the right error
  (``InvalidEventError``, fastavro's ``OverflowError`` for an id of 2**63 or more, ...).
- ``raw`` as bytes is written as it is: it must be UTF-8 (the producer's page split proves it;
  anything else is the caller's bug, and fastavro would refuse the text it decodes to).
- ``SOURCES`` must name every field of the schema: a new field without a source makes
  ``compile_event_encoder`` raise ``Unsupported``, and the codec then uses ``to_record``.
  A field added to ``to_record`` must be added here too (the property tests catch it).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Protocol

from schemas import compiled, mapping
from schemas.compiled import Fallback, Unsupported

#: How ``to_record`` reads each flat field: ``(object, key)`` where object is ``event`` (the
#: top level) or one of the sub-objects bound in the generated prologue; or a Python
#: expression over those names for the special fields.
SOURCES: dict[str, tuple[str, str] | str] = {
    "connection_id": ("event", "connection_id"),
    "account_user": ("account", "user"),
    "account_host": ("account", "host"),
    "login_user": ("login", "user"),
    "login_os": ("login", "os"),
    "login_ip": ("login", "ip"),
    "login_proxy": ("login", "proxy"),
    "connection_type": ("conn", "connection_type"),
    "connection_status": ("conn", "status"),
    "connection_db": ("conn", "db"),
    "connection_attributes": ("conn", "connection_attributes"),
    "command": ("general", "command"),
    "sql_command": ("sql_source", "sql_command"),
    "query": ("sql_source", "query"),
    "status": ("general", "status"),
    "table_db": ("table", "db"),
    "table_name": ("table", "table"),
    "server_id": 'startup.get("server_id", shutdown.get("server_id"))',
    "os_version": ("startup", "os_version"),
    "mysql_version": ("startup", "mysql_version"),
    "startup_args": ("startup", "args"),
    "query_time": ("stats", "query_time"),
    "rows_sent": ("stats", "rows_sent"),
    "rows_examined": ("stats", "rows_examined"),
    "bytes_received": ("stats", "bytes_received"),
    "bytes_sent": ("stats", "bytes_sent"),
    "message_component": ("message", "component"),
    "message_producer": ("message", "producer"),
    "message": ("message", "message"),
    "message_map": ("message", "map"),
    "unix_time": ("event", "time"),
}
#: Sub-objects as ``to_record`` binds them (``_obj``: a non-mapping reads as empty).
OBJECTS = {
    "account": "account",
    "login": "login",
    "conn": "connection_data",
    "general": "general_data",
    "table": "table_access_data",
    "startup": "startup_data",
    "shutdown": "shutdown_data",
    "stats": "query_statistics",
    "message": "message_data",
}
#: Fields whose values repeat from event to event (accounts, hosts, commands, names): their
#: encodings are looked up in a bounded cache (``_StringCache``) instead of encoded each time.
#: Free text (``query``, ``message``, ...) is not cached: it rarely repeats.
CACHED = frozenset(
    {
        "class",
        "event",
        "account_user",
        "account_host",
        "login_user",
        "login_os",
        "login_ip",
        "login_proxy",
        "connection_type",
        "connection_db",
        "command",
        "sql_command",
        "table_db",
        "table_name",
        "os_version",
        "mysql_version",
        "message_component",
        "message_producer",
    }
)
_REQUIRED_STRING = """\
    if v.__class__ is not str: raise Fallback
    _e = PLAIN_get(v)
    a(_e if _e is not None else PLAIN.add(v))"""
#: The fields written from the arguments or identity checks, in their schema positions.
_FIXED = {
    "server_uuid": "    a(_uuid(server_uuid))",
    "timestamp": "    a(_timestamp(get('timestamp')))",
    "id": (
        "    v = get('id')\n"
        "    if v.__class__ is int and 0 <= v < 16384: a(LENGTHS[v])\n"
        "    elif v.__class__ is int and 0 <= v < 134217728:\n"
        "        a(_CONTINUED[(v << 1) & 0x3FFF]); a(_RAW[v >> 13])\n"
        "    else: a(_event_id(event))"
    ),
    "class": "    v = get('class')\n" + _REQUIRED_STRING,
    "event": "    v = get('event')\n" + _REQUIRED_STRING,
    "raw": (
        "    v = raw\n"
        "    if v.__class__ is bytes: _b = v\n"
        "    elif v.__class__ is str: _b = v.encode()\n"
        "    else: raise Fallback\n"
        "    _n = len(_b)\n"
        "    a(LENGTHS[_n] if _n < 16384 else length(_n)); a(_b)"
    ),
    # The producer's: a 64-digit hex string and a growing count (inline, the common case).
    "chain": (
        "    v = chain\n"
        "    if v.__class__ is str:\n"
        "        _b = v.encode(); _n = len(_b)\n"
        "        a(NTAGGED[_n] if _n < 16384 else b'\\x02' + length(_n)); a(_b)\n"
        "    else: a(_nstring_strict(v))"
    ),
    "chain_seq": (
        "    v = chain_seq\n"
        "    if v.__class__ is int and 0 <= v < 16384: a(NTAGGED[v])\n"
        "    elif v.__class__ is int and 0 <= v < 134217728:\n"
        "        a(b'\\x02'); a(_CONTINUED[(v << 1) & 0x3FFF]); a(_RAW[v >> 13])\n"
        "    else: a(_nlong_strict(v))"
    ),
}
#: What the ``_FIXED`` code writes: ``(nullable, kind)`` it must find in the schema.
_FIXED_KINDS = {
    "server_uuid": (False, "string"),
    "timestamp": (False, "timestamp-millis"),
    "id": (False, "long"),
    "class": (False, "string"),
    "event": (False, "string"),
    "raw": (False, "string"),
    "chain": (True, "string"),
    "chain_seq": (True, "long"),
}
_NULL = b"\x00"
#: ``b"\x02"`` (union branch 1) + the zigzag varint of 0..16383, for lengths and small longs.
NTAGGED: tuple[bytes, ...] = tuple(b"\x02" + b for b in compiled.LENGTHS)
_EMPTY: Mapping[str, Any] = {}


class _StringCache(dict[str, bytes]):
    """Strings to their encoding (``prefix`` + length + UTF-8), bounded: cleared when full.

    Traps: only exact ``str`` values are looked up or added (the generated code checks the
    class first: a ``str`` subclass or another type takes the ordinary path); a string that
    cannot be encoded (a lone surrogate) raises here as it would inline, and is not added.
    Long strings are encoded but not kept, so the cache stays small (``MAX`` entries of at most
    ``LONGEST`` bytes).
    """

    MAX = 4096
    LONGEST = 256

    def __init__(self, prefix: bytes) -> None:
        super().__init__()
        self._prefix = prefix

    def add(self, value: str) -> bytes:
        """The encoding of ``value``, kept for the next time when it is short."""
        b = value.encode()
        n = len(b)
        encoded = self._prefix + compiled.length(n) + b
        if n <= self.LONGEST:
            if len(self) >= self.MAX:
                self.clear()
            self[value] = encoded
        return encoded


class EventEncoder(Protocol):
    """The generated function's signature."""

    def __call__(
        self,
        server_uuid: str,
        raw: str | bytes,
        event: Mapping[str, Any],
        chain: str | None,
        chain_seq: int | None,
        header: bytes,
    ) -> bytes:
        """``header`` + the Avro body of the event's record (module docstring)."""
        ...


@lru_cache(maxsize=64)
def _uuid(server_uuid: str) -> bytes:
    if server_uuid.__class__ is not str:
        raise Fallback
    b = server_uuid.encode()
    return compiled.length(len(b)) + b


@lru_cache(maxsize=8192)
def _timestamp(text: str) -> bytes:
    if text.__class__ is not str:
        raise Fallback
    return compiled.long(compiled.millis(mapping.parse_timestamp(text)))


def _nstring_strict(value: object) -> bytes:
    if value is None:
        return _NULL
    if value.__class__ is not str:
        raise Fallback
    b = value.encode()
    return b"\x02" + compiled.length(len(b)) + b


def _nlong_strict(value: object) -> bytes:
    if value is None:
        return _NULL
    if value.__class__ is not int:
        raise Fallback
    return b"\x02" + (_zigzag(value) if _LONG_MIN <= value <= _LONG_MAX else compiled.long(value))


def _slow_string(value: object) -> bytes:
    return _nstring_strict(mapping._str(value))


def _slow_long(value: object) -> bytes:
    return _nlong_strict(mapping._int(value))


#: Plain (not zigzag) varints of 0..16383, and the same 14 bits as two continued bytes.
_RAW: tuple[bytes, ...] = tuple(compiled._varint(u) for u in range(16384))
_CONTINUED: tuple[bytes, ...] = tuple(
    bytes(((u & 0x7F) | 0x80, (u >> 7) | 0x80)) for u in range(16384)
)
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


def _zigzag(n: int) -> bytes:
    """``compiled.long(n)`` for a signed 64-bit ``n`` (the caller checks the range).

    14 bits at a time from tables instead of a loop per 7 bits: a unix time or a byte count
    (3-6 bytes) is the common case here. Equality with ``compiled.long`` is tested at every
    length boundary (tests/schemas/test_fused.py).
    """
    u = (n << 1) ^ (n >> 63)
    if u < 16384:
        return _RAW[u]
    if u < 268435456:  # 2**28
        return _CONTINUED[u & 0x3FFF] + _RAW[u >> 14]
    if u < 4398046511104:  # 2**42
        return _CONTINUED[u & 0x3FFF] + _CONTINUED[(u >> 14) & 0x3FFF] + _RAW[u >> 28]
    return compiled.long(n)


def _tagged_long(value: int) -> bytes:
    """A nullable long of an exact ``int`` as ``to_record`` maps it (out of range: null)."""
    if _LONG_MIN <= value <= _LONG_MAX:
        return b"\x02" + _zigzag(value)
    return _NULL


def _event_id(event: Mapping[str, Any]) -> bytes:
    """The ``id`` field: ``long(mapping.event_id(event))`` (Fallback beyond a signed long)."""
    value = mapping.event_id(event)
    return _zigzag(value) if value <= _LONG_MAX else compiled.long(value)


def _slow_double(value: object) -> bytes:
    number = mapping._float(value)
    return _NULL if number is None else b"\x02" + compiled.PACK_DOUBLE(number)


def _strings(values: Any, parts: list[bytes]) -> None:
    for v in values:
        if v.__class__ is not str:
            raise Fallback
        b = v.encode()
        parts.append(compiled.length(len(b)))
        parts.append(b)


def _slow_map(value: object) -> bytes:
    converted = mapping._str_map(value)
    if converted is None:
        return _NULL
    parts = [b"\x02"]
    if converted:
        parts.append(compiled.length(len(converted)))
        for k, v in converted.items():
            _strings((k, v), parts)
    parts.append(_NULL)
    return b"".join(parts)


def _slow_array(value: object) -> bytes:
    converted = mapping._str_list(value)
    if converted is None:
        return _NULL
    parts = [b"\x02"]
    if converted:
        parts.append(compiled.length(len(converted)))
        _strings(converted, parts)
    parts.append(_NULL)
    return b"".join(parts)


def _field_lines(kind: str, expr: str, cached: bool = False) -> list[str]:
    lines = [f"    v = {expr}"]
    if kind == "string" and cached:
        return [
            *lines,
            "    if v is None: a(b'\\x00')",
            "    elif v.__class__ is str:",
            "        _e = TAGGED_get(v)",
            "        a(_e if _e is not None else TAGGED.add(v))",
            "    else: a(_slow_string(v))",
        ]
    if kind == "string":
        return [
            *lines,
            "    if v is None: a(b'\\x00')",
            "    elif v.__class__ is str:",
            "        _b = v.encode(); _n = len(_b)",
            "        a(NTAGGED[_n] if _n < 16384 else b'\\x02' + length(_n)); a(_b)",
            "    else: a(_slow_string(v))",
        ]
    if kind == "long":
        return [
            *lines,
            "    if v is None: a(b'\\x00')",
            "    elif v.__class__ is int: a(NTAGGED[v] if 0 <= v < 16384 else _tagged_long(v))",
            "    else: a(_slow_long(v))",
        ]
    if kind == "double":
        return [
            *lines,
            "    if v is None: a(b'\\x00')",
            "    elif v.__class__ is float: a(b'\\x02'); a(PACK_DOUBLE(v))",
            "    else: a(_slow_double(v))",
        ]
    if kind in ("map", "array"):
        return [*lines, f"    a(b'\\x00' if v is None else _slow_{kind}(v))"]
    raise Unsupported(f"no fused encoding for a nullable {kind}")


def _runs(fields: list[tuple[str, bool, str]]) -> list[list[tuple[str, bool, str]]]:
    """The fields in schema order, consecutive ones read from the same sub-object grouped.

    A sub-object that is absent (or not a mapping) is bound to ``_EMPTY``, where every field
    reads as None: the run is then one constant of null branches instead of a test per field.
    """
    runs: list[list[tuple[str, bool, str]]] = []
    previous = None
    for field in fields:
        source = SOURCES.get(field[0])
        local = source[0] if isinstance(source, tuple) and source[0] in OBJECTS else None
        if local is not None and local == previous:
            runs[-1].append(field)
        else:
            runs.append([field])
        previous = local
    return runs


def _absent(source: tuple[str, str] | str | None) -> str | None:
    """The test that a single field's source objects are all absent (None: not known)."""
    if isinstance(source, tuple) and (source[0] in OBJECTS or source[0] == "sql_source"):
        return f"{source[0]} is _EMPTY"
    if source == SOURCES["server_id"]:
        return "startup is _EMPTY and shutdown is _EMPTY"
    return None


def compile_event_encoder(schema: Any) -> EventEncoder:
    """The fused encoder for ``schema`` (the parsed current ``audit_event`` schema).

    Raises:
        Unsupported: a field of the schema has no source here, or a type not covered.
    """
    return _compile(schema, compiled.record_fields(schema))


#: The fields ``event_tail`` writes: the schema's last two.
TAIL = ("chain", "chain_seq")


def compile_event_prefix_encoder(schema: Any) -> EventEncoder:
    """The fused encoder without the last two fields (``chain``, ``chain_seq``).

    ``prefix(uuid, raw, event, None, None, header) + event_tail(chain, chain_seq)`` is
    ``encode(uuid, raw, event, chain, chain_seq, header)`` (property-tested), and the prefix
    raises ``Fallback`` exactly when the encoder does for a str ``chain`` and an int
    ``chain_seq``. The producer encodes the prefix while the page's event is being parsed,
    before the chain link it does not yet know (``producer.page``: the parsed object is hot in
    the CPU cache then, not a page later).

    Raises:
        Unsupported: as ``compile_event_encoder``, or the chain fields are not the last two.
    """
    fields = compiled.record_fields(schema)
    if tuple(name for name, _, _ in fields[-2:]) != TAIL:
        raise Unsupported("chain and chain_seq are not the schema's last fields")
    return _compile(schema, fields, fields[:-2])


def event_tail(chain: str, chain_seq: int) -> bytes:
    """The last two fields (the chain link and its number) as the encoder writes them.

    Raises:
        Fallback: ``chain`` is not a str or ``chain_seq`` not an int (as the encoder would).
    """
    return _nstring_strict(chain) + _nlong_strict(chain_seq)


def _compile(
    schema: Any,
    fields: list[tuple[str, bool, str]],
    written: list[tuple[str, bool, str]] | None = None,
) -> EventEncoder:
    """The encoder of ``schema`` writing ``written`` (default: every field) of ``fields``."""
    names = [name for name, _, _ in fields]
    missing = set(names) - set(SOURCES) - set(_FIXED)
    if missing or set(SOURCES) - set(names):
        raise Unsupported(f"fields without a source: {sorted(missing)}")
    fields = fields if written is None else written
    src = [
        "def encode(server_uuid, raw, event, chain, chain_seq, header):",
        "    if event.__class__ is not dict: raise Fallback",
        "    get = event.get",
        "    parts = [header]",
        "    a = parts.append",
    ]
    for local, key in OBJECTS.items():
        src += [
            f"    {local} = get({key!r})",
            f"    if {local} is None: {local} = _EMPTY",
            f"    elif {local}.__class__ is not dict:",
            f"        if isinstance({local}, Mapping): raise Fallback",
            f"        {local} = _EMPTY",
        ]
    src.append("    sql_source = general or table")
    for run in _runs(fields):
        name, nullable, kind = run[0]
        if name in _FIXED:
            if _FIXED_KINDS[name] != (nullable, kind):
                raise Unsupported(f"{name} is {kind} (nullable: {nullable}), fused code is not")
            src += _FIXED[name].split("\n")
            continue
        lines = []
        for name, nullable, kind in run:
            if not nullable:
                raise Unsupported(f"{name} is not nullable")
            source = SOURCES[name]
            expr = source if isinstance(source, str) else f"{source[0]}.get({source[1]!r})"
            if expr.startswith("event.get("):
                expr = "get(" + expr.removeprefix("event.get(")
            lines += _field_lines(kind, expr, name in CACHED)
        if len(run) == 1:
            absent = _absent(SOURCES.get(name))
            if absent is None:
                src += lines
            else:
                # Read from sub-objects that are absent: null, without asking them.
                src.append(f"    if {absent}: a({_NULL!r})")
                src.append("    else:")
                src += ["    " + line for line in lines]
        else:
            # Every field of the run reads one sub-object: absent, they are all null.
            local = SOURCES[run[0][0]][0]
            src.append(f"    if {local} is _EMPTY: a({_NULL * len(run)!r})")
            src.append("    else:")
            src += ["    " + line for line in lines]
    src.append("    return b''.join(parts)")
    scope = compiled.namespace()
    plain, tagged = _StringCache(b""), _StringCache(b"\x02")
    scope.update(
        {
            "PLAIN": plain,
            "PLAIN_get": plain.get,
            "TAGGED": tagged,
            "TAGGED_get": tagged.get,
            "_CONTINUED": _CONTINUED,
            "_RAW": _RAW,
            "Mapping": Mapping,
            "_EMPTY": _EMPTY,
            "NTAGGED": NTAGGED,
            "_event_id": _event_id,
            "_uuid": _uuid,
            "_timestamp": _timestamp,
            "_nstring_strict": _nstring_strict,
            "_nlong_strict": _nlong_strict,
            "_slow_string": _slow_string,
            "_slow_long": _slow_long,
            "_tagged_long": _tagged_long,
            "_slow_double": _slow_double,
            "_slow_map": _slow_map,
            "_slow_array": _slow_array,
        }
    )
    source = "\n".join(compiled.guarded(src)) + "\n"
    exec(compile(source, "<fused audit_event encoder>", "exec"), scope)  # noqa: S102
    encode: EventEncoder = scope["encode"]
    return encode
