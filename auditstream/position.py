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

from typing import Any, NamedTuple


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
