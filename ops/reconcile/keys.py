"""Event keys ``(server_uuid, timestamp, id)``, the range reconciled, and the event digest.

Traps:

- The timestamp is compared as the server's text (``YYYY-MM-DD hh:mm:ss``, UTC): that text
  orders like time, and every store gives it back unchanged (DATETIME columns are formatted the
  same way), so no time zone ever enters a key.
- The digest is SHA-256 of the raw text's UTF-8 bytes, the same value a gap control event
  carries in ``sha256``: a gap names the very event it stands for.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from auditstream.errors import ConfigError
from auditstream.position import Position, position_text
from schemas.mapping import TIMESTAMP_FORMAT


def digest(raw: str) -> bytes:
    """SHA-256 of ``raw``'s UTF-8 bytes (what a gap's ``sha256`` holds, as hex)."""
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).digest()


def ts_text(value: object) -> str:
    """A timestamp as the server writes it; naive datetimes (DATETIME columns) are UTC."""
    if isinstance(value, datetime):
        return value.strftime(TIMESTAMP_FORMAT)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("ascii")
    return str(value)


@dataclass(frozen=True)
class KeyRange:
    """The keys reconciled: one server (or all) between two positions, both inclusive.

    Attributes:
        server_uuid: only this server; None means every server a store holds.
        start: the first position, None for the beginning of the log.
        end: the last position, None for "as far as the stores go" (the command sets it to
            the source's newest bookmark when it reads the source, so events written while
            it runs are left out everywhere).
    """

    server_uuid: str | None = None
    start: Position | None = None
    end: Position | None = None

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.start > self.end:
            raise ConfigError(
                "the range ends before it starts",
                start=position_text(self.start),
                end=position_text(self.end),
            )

    def holds(self, server_uuid: str, ts: str, id_: int) -> bool:
        """True when the key lies in the range."""
        if self.server_uuid is not None and server_uuid != self.server_uuid:
            return False
        pos = (ts, id_)
        if self.start is not None and pos < self.start:
            return False
        return self.end is None or pos <= self.end

    def past(self, ts: str, id_: int) -> bool:
        """True when a position lies after the end (readers in key order stop there)."""
        return self.end is not None and (ts, id_) > self.end

    def __str__(self) -> str:
        server = self.server_uuid or "every server"
        start = position_text(self.start) if self.start else "the beginning"
        end = position_text(self.end) if self.end else "the end"
        return f"{server}, {start} .. {end}"
