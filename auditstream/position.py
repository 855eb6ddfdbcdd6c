"""An event's position in its server's audit log: ``(timestamp text, id)``.

The one position type of the pipeline: the producer's pages and bookmarks, and the ranges of
``verify`` and ``reconcile``. It is a ``NamedTuple``, so positions compare (and sort) like the
log orders events, and a plain ``(ts, id)`` tuple compares equal to it.

Traps: ``ts`` is the server's text (``YYYY-MM-DD hh:mm:ss``, UTC), never a ``datetime``: the
bookmark ``audit_log_read`` takes is text and must come back byte for byte. Oracle's ``id``
restarts every second, Percona's is global: both order by ``(ts, id)``, never by ``id`` alone.
The archive's ``consumer.rows.Identity`` is the same key as stored (a naive UTC ``datetime``).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, NamedTuple

from auditstream.errors import ConfigError

#: The largest id: a range's end without ``#id`` takes every event of its second.
MAX_ID = 2**64 - 1
_BOOKMARK = re.compile(r"(\d{4}-\d\d-\d\d)(?:[ T](\d\d:\d\d:\d\d))?(?:#(\d{1,20}))?")


class Position(NamedTuple):
    """Where an event sits in the log: ``(timestamp text, id)``; tuples order like the log."""

    ts: str
    id: int

    def arg(self) -> dict[str, Any]:
        """The bookmark argument ``audit_log_read`` takes."""
        return {"timestamp": self.ts, "id": self.id}

    def text(self) -> str:
        """The bookmark notation of flags and messages: ``YYYY-MM-DD hh:mm:ss#id``."""
        return f"{self.ts}#{self.id}"


def position_text(pos: tuple[str, int] | None) -> str | None:
    """``pos`` in bookmark notation, None for None (a control event's open end)."""
    return None if pos is None else Position(*pos).text()


def parse_position(text: str, *, upper: bool = False) -> Position:
    """A flag's ``'YYYY-MM-DD[ hh:mm:ss][#id]'`` (UTC) as a position; missing parts widen a range.

    The one parser of the bookmark flags (``verify --since/--until``, ``reconcile
    --start/--end``). ``upper`` fills the missing parts for the end of a range (23:59:59, the
    largest id), otherwise for its start (00:00:00, id 0). A ``T`` may stand for the space.

    Raises:
        ConfigError: the text is not such a bookmark, or not a real time.
    """
    match = _BOOKMARK.fullmatch(text.strip())
    if match is None:
        raise ConfigError("a bookmark looks like 'YYYY-MM-DD[ hh:mm:ss][#id]' (UTC)", bookmark=text)
    day, time_, ident = match.groups()
    ts = f"{day} {time_ or ('23:59:59' if upper else '00:00:00')}"
    try:
        datetime.fromisoformat(ts)  # validation only: the position keeps the text
    except ValueError as exc:
        raise ConfigError(f"not a valid time: {exc}", bookmark=text) from None
    if ident is None:
        return Position(ts, MAX_ID if upper else 0)
    if int(ident) > MAX_ID:
        raise ConfigError("the id is larger than 2**64 - 1", bookmark=text)
    return Position(ts, int(ident))
