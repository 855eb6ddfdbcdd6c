r"""Percona's ``audit_log_read()`` text: events re-encoded from a parse, never the file's bytes.

Percona's reader (``components/audit_log_filter/json_reader/audit_json_handler.cc`` in
percona/percona-server, the version that reads both JSON and JSONL files) runs a SAX parser over
the log files and writes every event anew, whatever the file's layout:

1. Objects as ``{"key": value, "key": value}`` (``": "`` after a key, ``", "`` between members),
   arrays as ``[a, b]``; one event per line, each followed by ``,\n``.
2. Strings re-escaped like rapidjson's writer: ``"`` and ``\`` escaped, ``\b \f \n \r \t``
   short, other bytes below 0x20 as ``\u00XX`` (upper-case hex), everything else (``/``,
   UTF-8) copied. So ``\/`` in a file comes back as ``/``.
3. Integers in decimal; doubles as C++ streams print them (6 significant digits).
4. A page is ``[\n`` + events + either ``null\n]\n`` (the end of the log was reached) or, with
   the last ``,\n`` taken off, ``\n]\n``. An empty page without ``null`` is ``[\n\n]\n``.

Traps:
    * A pretty-printed (multi-line) JSON-format event therefore reaches the client on one line,
      and a file's key spacing never does: ``raw`` is the page's text, not the file's.
    * Older readers (Percona 8.0 up to the JSONL release) wrote strings *unescaped*; that bug is
      not emulated (see docs/emulator.md).
"""

from __future__ import annotations

from typing import Any

import orjson

OPEN, CLOSE, CLOSE_NULL, SEP = b"[\n", b"\n]\n", b"null\n]\n", b",\n"
#: Percona keeps room for both closing tags while filling a page
RESERVED = len(CLOSE) + len(CLOSE_NULL)

_SHORT = {0x08: "\\b", 0x0C: "\\f", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"}
_ESCAPES = {c: _SHORT.get(c, f"\\u00{c:02X}") for c in range(0x20)} | {
    0x22: '\\"',
    0x5C: "\\\\",
}


def string(value: str) -> str:
    """A JSON string the way Percona's reader re-encodes it."""
    return '"' + value.translate(_ESCAPES) + '"'


def value_text(value: Any) -> str:
    """One JSON value re-encoded (objects keep their key order)."""
    if isinstance(value, str):
        return string(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{string(k)}: {value_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def event(raw: bytes) -> bytes:
    """The page text of one event stored as ``raw`` (any layout, any spacing)."""
    return value_text(orjson.loads(raw)).encode("utf-8")


def page(events: list[bytes], *, ended: bool) -> bytes:
    """A whole page from already re-encoded events."""
    if ended:
        return OPEN + b"".join(e + SEP for e in events) + CLOSE_NULL
    return OPEN + SEP.join(events) + CLOSE
