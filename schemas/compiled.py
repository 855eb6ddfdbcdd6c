"""Avro binary encoders and decoders generated as Python source from a flat record schema.

``compile_record(schema)`` writes one ``encode(record, header)`` and one ``decode(body)`` function
for the schema, field by field with no per-value dispatch, and compiles them once. They produce
exactly the bytes and records fastavro does (fastavro stays the reference: see
``tests/schemas/test_compiled.py``) for what they cover:

- a record whose fields are ``string``, ``long``, ``double``, ``long``/``timestamp-millis``, or a
  two-branch union of ``null`` first and one of those or a ``map``/``array`` of strings.

Anything else in a schema raises ``Unsupported`` at compile time. At run time the generated code
accepts only exact types (``str``, ``int``, ``float``, ``dict``, ``list``, aware ``datetime``).
Any other value, a missing field, an out-of-range integer, a truncated or odd body (negative
block counts), any error at all raises ``Fallback``: the caller must then use fastavro, which
gives the reference answer or the reference error. Traps:

- fastavro ignores bytes after the record; so does ``decode``.
- a value fastavro would coerce (an ``int`` for a ``double``, a naive datetime) is not
  coerced here: it falls back, so coercion rules never have to be copied.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

EncodeFn = Callable[[dict[str, Any], bytes], bytes]
DecodeFn = Callable[[bytes, int], dict[str, Any]]

_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
PACK_DOUBLE = struct.Struct("<d").pack
_UNPACK_DOUBLE = struct.Struct("<d").unpack_from


class Unsupported(ValueError):
    """The schema has a shape the generator does not cover (use fastavro for it)."""


class Fallback(Exception):
    """This value or body is outside the fast path: encode or decode it with fastavro."""


def _varint(u: int) -> bytes:
    out = bytearray()
    while u > 0x7F:
        out.append((u & 0x7F) | 0x80)
        u >>= 7
    out.append(u)
    return bytes(out)


#: zigzag varints of 0..16383 as used for lengths and counts (one or two bytes).
LENGTHS: tuple[bytes, ...] = tuple(_varint(n << 1) for n in range(16384))


def length(n: int) -> bytes:
    """The Avro ``long`` of a non-negative length ``n``."""
    return LENGTHS[n] if n < 16384 else _varint(n << 1)


def long(n: int) -> bytes:
    """The Avro ``long`` (zigzag varint) of ``n``; ``Fallback`` outside the signed 64-bit range."""
    if 0 <= n < 16384:
        return LENGTHS[n]
    if not _LONG_MIN <= n <= _LONG_MAX:
        raise Fallback("long out of range")
    return _varint((n << 1) ^ (n >> 63))


def millis(value: datetime) -> int:
    """An aware datetime as timestamp-millis, computed the way fastavro does (truncating)."""
    delta = value - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1000 + delta.microseconds // 1000


@lru_cache(maxsize=8192)
def _from_millis(n: int) -> datetime:
    return _EPOCH + timedelta(microseconds=n * 1000)


def read_long_slow(buf: bytes, pos: int) -> tuple[int, int]:
    """A zigzag varint at ``pos`` of more than one byte: ``(value, next pos)``."""
    u = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        u |= (b & 0x7F) << shift
        if b < 0x80:
            break
        shift += 7
        if shift > 63:
            raise Fallback("varint longer than 10 bytes")
    if u >> 64:
        raise Fallback("varint beyond 64 bits")
    return (u >> 1) ^ -(u & 1), pos


# --- source generation -------------------------------------------------------------------

_SCALARS = ("string", "long", "double", "timestamp-millis")


def _kind(t: Any) -> str:
    if isinstance(t, str) and t in ("string", "long", "double"):
        return t
    if isinstance(t, dict):
        if t.get("type") == "long" and t.get("logicalType") == "timestamp-millis":
            return "timestamp-millis"
        if t.get("type") == "map" and t.get("values") == "string":
            return "map"
        if t.get("type") == "array" and t.get("items") == "string":
            return "array"
    raise Unsupported(f"type {t!r}")


def _field_kind(t: Any) -> tuple[bool, str]:
    if isinstance(t, list):
        if len(t) != 2 or t[0] != "null":
            raise Unsupported(f"union {t!r}")
        return True, _kind(t[1])
    kind = _kind(t)
    if kind not in _SCALARS:
        raise Unsupported(f"{kind} outside a union")
    return False, kind


def encode_lines(kind: str, v: str, out: list[str], pad: str) -> None:
    """Source lines that append the encoding of value ``v`` (a local name) to ``parts``."""
    if kind == "string":
        out += [
            f"{pad}if {v}.__class__ is not str: raise Fallback",
            f"{pad}_b = {v}.encode()",
            f"{pad}_n = len(_b)",
            f"{pad}a(LENGTHS[_n] if _n < 16384 else length(_n)); a(_b)",
        ]
    elif kind == "long":
        out += [f"{pad}if {v}.__class__ is not int: raise Fallback", f"{pad}a(long({v}))"]
    elif kind == "double":
        out += [f"{pad}if {v}.__class__ is not float: raise Fallback", f"{pad}a(PACK_DOUBLE({v}))"]
    elif kind == "timestamp-millis":
        out += [
            f"{pad}if {v}.__class__ is datetime and {v}.tzinfo is not None: a(long(millis({v})))",
            f"{pad}elif {v}.__class__ is int: a(long({v}))",
            f"{pad}else: raise Fallback",
        ]
    else:  # map or array of strings
        cls, loop, items = ("dict", "_k, _x", ".items()") if kind == "map" else ("list", "_x", "")
        out += [
            f"{pad}if {v}.__class__ is not {cls}: raise Fallback",
            f"{pad}if {v}:",
            f"{pad}    a(length(len({v})))",
            f"{pad}    for {loop} in {v}{items}:",
        ]
        if kind == "map":
            encode_lines("string", "_k", out, pad + "        ")
        encode_lines("string", "_x", out, pad + "        ")
        out.append(f"{pad}a(b'\\x00')")


def _decode_lines(kind: str, target: str, out: list[str], pad: str) -> None:
    """Source lines that read one value at ``p`` of ``buf`` into ``target``."""
    # Varints of one and two bytes inline (lengths up to 8191, the chain hash, ...).
    read_long = [
        f"{pad}_u = buf[p]",
        f"{pad}if _u < 0x80: _v = (_u >> 1) ^ -(_u & 1); p += 1",
        f"{pad}elif buf[p + 1] < 0x80:",
        f"{pad}    _u = (_u & 0x7F) | (buf[p + 1] << 7); _v = (_u >> 1) ^ -(_u & 1); p += 2",
        f"{pad}else: _v, p = read_long_slow(buf, p)",
    ]
    if kind == "string":
        # No bounds check per string: a slice past the end moves p past it, which the
        # generated decode checks once at the end (p never goes back).
        out += [
            f"{pad}_u = buf[p]",
            f"{pad}if _u < 0x80 and not _u & 1:",
            f"{pad}    _e = p + 1 + (_u >> 1); {target} = buf[p + 1:_e].decode(); p = _e",
            f"{pad}elif buf[p + 1] < 0x80 and _u & 0x80 and not _u & 1:",
            f"{pad}    _e = p + 2 + (((_u & 0x7F) | (buf[p + 1] << 7)) >> 1)",
            f"{pad}    {target} = buf[p + 2:_e].decode(); p = _e",
            f"{pad}else:",
            f"{pad}    _v, p = read_long_slow(buf, p)",
            f"{pad}    if _v < 0: raise Fallback",
            f"{pad}    _e = p + _v; {target} = buf[p:_e].decode(); p = _e",
        ]
    elif kind in ("long", "timestamp-millis"):
        out += read_long
        value = "_from_millis(_v)" if kind == "timestamp-millis" else "_v"
        out.append(f"{pad}{target} = {value}")
    elif kind == "double":
        out += [f"{pad}{target} = _UNPACK_DOUBLE(buf, p)[0]; p += 8"]
    else:
        out += [f"{pad}_c = {{}}" if kind == "map" else f"{pad}_c = []", f"{pad}while True:"]
        out += [f"    {line}" for line in read_long]
        out += [f"{pad}    if _v == 0: break", f"{pad}    if _v < 0: raise Fallback"]
        out += [f"{pad}    for _i in range(_v):"]
        inner = pad + "        "
        if kind == "map":
            _decode_lines("string", "_k", out, inner)
            _decode_lines("string", "_c[_k]", out, inner)
        else:
            _decode_lines("string", "_x", out, inner)
            out.append(f"{inner}_c.append(_x)")
        out.append(f"{pad}{target} = _c")


def record_fields(schema: Any) -> list[tuple[str, bool, str]]:
    """``(name, nullable, kind)`` of each field of a flat record schema; ``Unsupported`` else."""
    if not isinstance(schema, dict) or schema.get("type") != "record":
        raise Unsupported("not a record schema")
    return [(f["name"], *_field_kind(f["type"])) for f in schema["fields"]]


def guarded(function: list[str]) -> list[str]:
    """A generated function's lines with its body inside ``try``: any error becomes Fallback."""
    return [
        function[0],
        "    try:",
        *("    " + line for line in function[1:]),
        "    except Fallback: raise",
        "    except Exception as exc: raise Fallback(repr(exc)) from exc",
    ]


def namespace() -> dict[str, Any]:
    """The names generated code may use."""
    return {
        "Fallback": Fallback,
        "LENGTHS": LENGTHS,
        "length": length,
        "long": long,
        "millis": millis,
        "datetime": datetime,
        "PACK_DOUBLE": PACK_DOUBLE,
        "_UNPACK_DOUBLE": _UNPACK_DOUBLE,
        "read_long_slow": read_long_slow,
        "_from_millis": _from_millis,
    }


def compile_record(schema: Any) -> tuple[EncodeFn, DecodeFn]:
    """``(encode, decode)`` generated for ``schema`` (a parsed flat record schema).

    ``encode(record, header)`` returns ``header`` + the Avro body; ``decode(value, start)`` the
    record whose body starts at ``start`` of ``value`` (no copy of the body is made).
    Both raise ``Fallback`` for anything outside the fast path (module docstring).

    Raises:
        Unsupported: the schema has a field type the generator does not cover.
    """
    fields = record_fields(schema)
    enc = ["def encode(r, header):", "    parts = [header]", "    a = parts.append"]
    dec = ["def decode(buf, p=0):", "    end = len(buf)"]
    for i, (name, nullable, kind) in enumerate(fields):
        enc.append(f"    v = r[{name!r}]")
        pad = "    "
        if nullable:
            enc += ["    if v is None: a(b'\\x00')", "    else:", "        a(b'\\x02')"]
            pad = "        "
            dec += [
                "    _t = buf[p]; p += 1",
                f"    if _t == 0: f{i} = None",
                "    elif _t != 2: raise Fallback",
                "    else:",
            ]
            _decode_lines(kind, f"f{i}", dec, "        ")
        else:
            _decode_lines(kind, f"f{i}", dec, "    ")
        encode_lines(kind, "v", enc, pad)
    enc.append("    return b''.join(parts)")
    dec.append("    if p > end: raise Fallback")
    dec.append(
        "    return {" + ", ".join(f"{name!r}: f{i}" for i, (name, _, _) in enumerate(fields)) + "}"
    )
    scope = namespace()
    source = "\n".join([*guarded(enc), "", *guarded(dec), ""])
    exec(compile(source, f"<avro codec {schema.get('name')}>", "exec"), scope)  # noqa: S102
    return scope["encode"], scope["decode"]
