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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from auditstream.errors import PageError

# Re-exported until producer.loop and producer.batch import it from its home (issue 18).
from auditstream.position import Position

_TS = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
_WS = re.compile(r"[ \t\n\r]*")
_SEP = re.compile(r"[ \t\n\r]*([,\]])[ \t\n\r]*")
_UNSIGNED_64 = 2**64


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


class Event:
    """One element of a page. ``pos`` is None and ``error`` set when it cannot be identified.

    The element's text is kept as it came: the page's bytes (the fast path) or its text (the
    general path, and ``split`` of a ``str``). ``data`` and ``raw`` give it either way, each
    converted once on first use: the hot path (chain, encoder) reads ``data`` and never
    decodes; both always hold the same text, unchanged from the page.

    ``prefix``: the event's message value up to its chain fields, when ``split`` was given a
    ``prepare`` function and it could encode the event; ``obj`` is then None (released as soon
    as it was encoded). None: encode from ``obj`` later.
    """

    __slots__ = ("_data", "_raw", "error", "obj", "pos", "prefix")

    def __init__(
        self, raw: str | bytes, obj: Any, pos: Position | None, error: str | None = None
    ) -> None:
        self._data: bytes | None = None
        self._raw: str | None = None
        if isinstance(raw, bytes):
            self._data = raw
        else:
            self._raw = raw
        self.obj = obj
        self.pos = pos
        self.error = error
        self.prefix: bytes | None = None

    @property
    def raw(self) -> str:
        """The element's exact text."""
        if self._raw is None:
            self._raw = self._data.decode("utf-8")  # type: ignore[union-attr]
        return self._raw

    @property
    def data(self) -> bytes:
        """The element's exact text as UTF-8 bytes (the page's own bytes on the fast path)."""
        if self._data is None:
            self._data = self._raw.encode("utf-8")  # type: ignore[union-attr]
        return self._data

    def size(self) -> int:
        """Bytes of the raw text (UTF-8)."""
        return len(self.data)

    def sha256(self) -> str:
        """SHA-256 (hex) of the raw text's UTF-8 bytes."""
        return hashlib.sha256(self.data).hexdigest()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return (self.raw, self.obj, self.pos, self.error) == (
            other.raw,
            other.obj,
            other.pos,
            other.error,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by value

    def __repr__(self) -> str:
        return f"Event(raw={self.raw!r}, obj={self.obj!r}, pos={self.pos!r}, error={self.error!r})"


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


#: ``prepare(raw, obj)``: an identified event's value prefix, or None (see ``Event.prefix``).
Prepare = Callable[[bytes, dict[str, Any]], bytes | None]


def split(
    text: str | bytes,
    after: Position | None = None,
    prepare: Prepare | None = None,
    **context: Any,
) -> Page:
    r"""Split one ``audit_log_read`` result (its bytes as the server sent them, or its text).

    Args:
        text: the page, e.g. ``[\n{...},\n{...},\nnull\n]``.
        after: the position of the event read just before this page in the same sequence;
            every identified event must come after it.
        prepare: called on each identified event of the bytes path right after its parse (the
            parsed object is still in the CPU cache then); sets ``Event.prefix``.
        **context: added to errors (server_uuid, bookmark).

    Bytes take ``_split_bytes`` first (no page decode; each event's ``raw`` stays the page's
    own bytes); whenever it declines, the page is decoded and split by the reference path
    below, so its answer (events or ``PageError``) is the reference's (property-tested).

    Raises:
        PageError: the page is not a readable array (or not UTF-8), or positions repeat or
            go back.
    """
    if isinstance(text, bytes | bytearray):
        data = bytes(text)
        page = _split_bytes(data, after, context, prepare)
        if page is not None:
            return page
        text = decode_text(data, **context)
    found = _by_lines(text)
    elements, exhausted = found if found is not None else _by_scan(text, context)
    events: list[Event] = []
    last = after
    for raw, obj in elements:
        event = _identify(raw, obj)
        pos = event.pos
        if pos is not None:
            if last is not None and pos <= last:
                raise _step_back(last, pos, context)
            last = pos
        events.append(event)
    return Page(events, exhausted, nbytes=len(text))


def _step_back(last: Position, pos: Position, context: dict[str, Any]) -> PageError:
    return PageError(
        "event positions repeat or go back (duplicate or out-of-order id)",
        previous=f"{last.ts}#{last.id}",
        event=f"{pos.ts}#{pos.id}",
        **context,
    )


def _split_bytes(
    data: bytes, after: Position | None, context: dict[str, Any], prepare: Prepare | None = None
) -> Page | None:
    r"""``_by_lines`` + ``_identify`` on the page's bytes in one pass; None: not that layout.

    The same proof as ``_by_lines``: each piece between ``,\n`` separators parses ALONE as
    one JSON object starting with ``{`` and ending with ``}``, so it is exactly one element's
    text (a raw newline cannot occur inside a JSON string). orjson checks the piece's UTF-8 as
    it parses, and the separators are ASCII, so a page this accepts is valid UTF-8 as a whole.
    Anything else (other spacing, a non-object, JSON or UTF-8 orjson refuses) returns None and
    the caller runs the reference path on the decoded text.

    Trap: a page declined after ``prepare`` ran on some of its events loses those prefixes
    (the reference path does not prepare): only speed is lost, never an event.

    Trap: a repeated or backward position is raised only once every piece has parsed: the
    reference reports a piece that does not parse first (it finds elements before it orders
    them), and the same page must give the same error on both paths.
    """
    end = len(data) - 1 if data.endswith(b"\n]\n") else len(data)  # Percona's final newline
    if not (data.startswith(b"[\n") and data.endswith(b"\n]", 0, end)) or end < 5:
        return None
    pieces = data[2 : end - 2].split(b",\n")
    exhausted = pieces[-1] == b"null"
    if exhausted:
        pieces.pop()
    loads, well_formed, new = orjson.loads, _TS.fullmatch, tuple.__new__
    events: list[Event] = []
    append = events.append
    last = after
    checked: str | None = None  # the last timestamp proven well-formed (events share seconds)
    back: tuple[Position, Position] | None = None
    try:
        for piece in pieces:
            obj = loads(piece)
            if obj.__class__ is not dict or piece[0] != 0x7B or piece[-1] != 0x7D:  # { }
                return None
            ts = obj.get("timestamp")
            ident = obj.get("id")
            if (
                ts.__class__ is str
                and (ts == checked or well_formed(ts))
                and ident.__class__ is int
                and 0 <= ident < _UNSIGNED_64
            ):
                checked = ts
                pos: Position = new(Position, (ts, ident))
                if last is not None and pos <= last and back is None:
                    back = (last, pos)
                last = pos
                event = Event(piece, obj, pos)
                if prepare is not None:
                    prefix = prepare(piece, obj)
                    if prefix is not None:
                        event.prefix, event.obj = prefix, None
                append(event)
            else:
                append(_identify(piece, obj))
    except orjson.JSONDecodeError:
        return None
    if back is not None:
        raise _step_back(*back, context)
    return Page(events, exhausted, nbytes=len(data))


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


def _identify(raw: str | bytes, obj: Any) -> Event:
    if not isinstance(obj, dict):
        return Event(raw, obj, None, f"element is a JSON {type(obj).__name__}, not an object")
    ts = obj.get("timestamp")
    ident = obj.get("id")
    if not isinstance(ts, str) or not _TS.fullmatch(ts):
        return Event(raw, obj, None, f"timestamp missing or not 'YYYY-MM-DD hh:mm:ss': {ts!r}")
    if type(ident) is not int or not 0 <= ident < _UNSIGNED_64:
        return Event(raw, obj, None, f"id missing or not an unsigned integer: {ident!r}")
    return Event(raw, obj, Position(ts, ident))
