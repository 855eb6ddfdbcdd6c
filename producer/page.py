r"""One ``audit_log_read()`` result split into events, each with its exact raw JSON text.

A page is a JSON array of event objects; when its last element is ``null`` the read sequence
is exhausted, otherwise a call without position continues it. Layouts seen (docs/producer.md):
Oracle copies the file's lines (``[\n{ ... },\n{ ... }\n]``); Percona re-encodes each event on
one line whatever the file's format (JSON or JSONL) and ends with a newline
(``[\n{...},\n{...},\nnull\n]\n``); a pretty-printed multi-line event is read too. Traps:

- ``raw`` must be the text the server sent (key order, spacing and escapes kept), never a
  re-serialisation of the parsed object: ``raw_decode`` gives both the object and its span.
- A page that cannot be read as an array (not JSON, truncated, ``null`` not last, invalid UTF-8)
  is a ``PageError``: nothing of it is published and the bookmark stays where it is.
- One event that is readable JSON but cannot be identified (no timestamp/id, wrong types, not an
  object) does not stop the stream: it comes back with ``error`` set, and the loop publishes a
  gap control event carrying its size and SHA-256.
- Positions must strictly increase (``(timestamp, id)``; Oracle's id restarts every second,
  Percona's is global, both order this way). A duplicate or a step back is a ``PageError``: the
  bookmark logic (drop at or before the bookmark) would silently lose events otherwise.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson

from auditstream.errors import PageError

_TS = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
_WS = re.compile(r"[ \t\n\r]*")
_SEP = re.compile(r"[ \t\n\r]*([,\]])[ \t\n\r]*")
_UNSIGNED_64 = 2**64


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


class Position(NamedTuple):
    """Where an event sits in the log: ``(timestamp text, id)``; tuples order like the log."""

    ts: str
    id: int

    def arg(self) -> dict[str, Any]:
        """The bookmark argument ``audit_log_read`` takes."""
        return {"timestamp": self.ts, "id": self.id}


@dataclass(slots=True)
class Event:
    """One element of a page. ``pos`` is None and ``error`` set when it cannot be identified."""

    raw: str
    obj: Any
    pos: Position | None
    error: str | None = None

    def size(self) -> int:
        """Bytes of the raw text (UTF-8)."""
        return len(self.raw.encode("utf-8"))

    def sha256(self) -> str:
        """SHA-256 (hex) of the raw text's UTF-8 bytes."""
        return hashlib.sha256(self.raw.encode("utf-8")).hexdigest()


@dataclass(slots=True)
class Page:
    """A split page: its events in order, whether it ended the sequence, the call's warnings."""

    events: list[Event]
    exhausted: bool
    warnings: list[str] = field(default_factory=list)
    nbytes: int = 0


def decode_text(data: bytes | str, **context: Any) -> str:
    """The page as text; invalid UTF-8 is a ``PageError`` (the server only writes UTF-8)."""
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PageError(
            f"page is not valid UTF-8 at byte {exc.start}", size=len(data), **context
        ) from exc


def split(text: str, after: Position | None = None, **context: Any) -> Page:
    r"""Split the text of one ``audit_log_read`` result.

    Args:
        text: the page, e.g. ``[\n{...},\n{...},\nnull\n]``.
        after: the position of the event read just before this page in the same sequence;
            every identified event must come after it.
        **context: added to errors (server_uuid, bookmark).

    Raises:
        PageError: the page is not a readable array, or positions repeat or go back.
    """
    found = _by_lines(text)
    elements, exhausted = found if found is not None else _by_scan(text, context)
    events: list[Event] = []
    last = after
    for raw, obj in elements:
        event = _identify(raw, obj)
        pos = event.pos
        if pos is not None:
            if last is not None and pos <= last:
                raise PageError(
                    "event positions repeat or go back (duplicate or out-of-order id)",
                    previous=f"{last.ts}#{last.id}",
                    event=f"{pos.ts}#{pos.id}",
                    **context,
                )
            last = pos
        events.append(event)
    return Page(events, exhausted, nbytes=len(text))


def _by_lines(text: str) -> tuple[list[tuple[str, Any]], bool] | None:
    r"""The fast path for one event per line (Oracle's and Percona's pages): None if not that.

    Each piece between ``,\n`` separators must parse ALONE as one JSON object, which proves it
    is exactly one element's text (a raw newline cannot occur inside a JSON string). Anything
    else (other spacing, a non-object, a value orjson refuses) takes the general path. Trap:
    orjson reads an integer beyond 64 bits as a float (json: an int); no audit field holds one,
    and either way it is no valid ``id`` and no flat integer field.
    """
    end = len(text) - 1 if text.endswith("\n]\n") else len(text)  # Percona's final newline
    if not (text.startswith("[\n") and text.endswith("\n]", 0, end)) or end < 5:
        return None
    pieces = text[2 : end - 2].split(",\n")
    exhausted = pieces[-1] == "null"
    if exhausted:
        pieces.pop()
    loads = orjson.loads
    out: list[tuple[str, Any]] = []
    try:
        for piece in pieces:
            if piece[:1] != "{" or piece[-1:] != "}":
                return None
            out.append((piece, loads(piece)))
    except orjson.JSONDecodeError:
        return None
    return out, exhausted


def _by_scan(text: str, context: dict[str, Any]) -> tuple[list[tuple[str, Any]], bool]:
    """The general path: ``raw_decode`` element by element, any JSON whitespace."""
    out: list[tuple[str, Any]] = []
    n = len(text)
    idx = _WS.match(text).end()  # type: ignore[union-attr]  # [ \t\n\r]* always matches
    if idx >= n or text[idx] != "[":
        raise PageError("page is not a JSON array", start=text[:40], **context)
    idx = _WS.match(text, idx + 1).end()  # type: ignore[union-attr]
    exhausted = False
    if idx < n and text[idx] == "]":
        idx += 1
    else:
        while True:
            if text.startswith("null", idx):
                exhausted = True
                idx += 4
            else:
                try:
                    obj, end = _DECODER.raw_decode(text, idx)
                except ValueError as exc:
                    raise PageError(
                        f"page is not JSON or is truncated: {exc}", offset=idx, **context
                    ) from exc
                out.append((text[idx:end], obj))
                idx = end
            sep = _SEP.match(text, idx)
            if sep is None:
                raise PageError(
                    "page is truncated or has garbage between events", offset=idx, **context
                )
            idx = sep.end()
            if sep.group(1) == "]":
                break
            if exhausted:
                raise PageError("null is not the last element of the page", offset=idx, **context)
    if text[idx:].strip():
        raise PageError("garbage after the page's closing bracket", offset=idx, **context)
    return out, exhausted


def _identify(raw: str, obj: Any) -> Event:
    if not isinstance(obj, dict):
        return Event(raw, obj, None, f"element is a JSON {type(obj).__name__}, not an object")
    ts = obj.get("timestamp")
    ident = obj.get("id")
    if not isinstance(ts, str) or not _TS.fullmatch(ts):
        return Event(raw, obj, None, f"timestamp missing or not 'YYYY-MM-DD hh:mm:ss': {ts!r}")
    if type(ident) is not int or not 0 <= ident < _UNSIGNED_64:
        return Event(raw, obj, None, f"id missing or not an unsigned integer: {ident!r}")
    return Event(raw, obj, Position(ts, ident))
