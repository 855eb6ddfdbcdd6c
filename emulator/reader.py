"""``audit_log_read()`` semantics: argument forms, read sequences, pages and their warnings.

One ``ReadSequence`` belongs to one client session. A page is built as:

1. Parse the argument: none → continue; ``null`` → close; a JSON object → bookmark
   (``timestamp`` + ``id``), ``start`` (``{"timestamp": T}``) and/or ``max_array_length``.
2. A positioned argument starts a new sequence (Percona: only after a close).
3. Copy whole events, as stored in the file, while they fit in ``buffer_size`` bytes (the
   whole page counts: brackets, separators and the trailing ``null``).
4. An event that cannot fit even alone is skipped with a warning (Oracle) or returned whole
   (Percona). A page that reached the end of the log ends with ``null`` and closes the sequence.

The page layout is the file's: ``[`` newline, then events separated by ``,`` newline, then
``]`` — so each event's bytes are exactly the file's (consumers compare ``raw``). With
``reencode`` (Percona 8.4.10+ / 9.x, see ``emulator.perconatext``) every event is re-encoded
from a parse instead, and a page is filled by Percona's rule: the first event always goes in
whole, a later one only while the page stays ``RESERVED`` bytes below the buffer size.

Traps:
    * ``null`` at the end means "nothing more *now*"; events written later are read by a new
      sequence positioned at the last processed bookmark.
    * Oracle positions a bookmark at the first event at or after it; Percona needs an exact
      match and returns ``[null]`` otherwise.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Literal

from emulator import perconatext
from emulator.arguments import parse_argument
from emulator.errors import UdfError, Warning, udf_failed
from emulator.logindex import AuditLogIndex, FileId, IndexedFile

__all__ = ["Page", "ReadSequence", "UdfError", "Warning", "parse_argument", "udf_failed"]

Flavor = Literal["oracle", "percona"]

#: the warning code chosen for skipped events (ER_WARN_ALLOWED_PACKET_OVERFLOWED; undocumented)
WARN_EVENT_SKIPPED = 1301

_OPEN, _SEP, _CLOSE, _NULL = b"[\n", b",\n", b"\n]", b"null"


@dataclass
class Page:
    """The result of one call: the bytes returned and the warnings it left."""

    payload: bytes
    warnings: list[Warning] = field(default_factory=list)
    events: int = 0


class ReadSequence:
    """One session's read sequence over a shared ``AuditLogIndex``."""

    def __init__(
        self, index: AuditLogIndex, flavor: Flavor = "oracle", *, reencode: bool = False
    ) -> None:
        self.index, self.flavor, self.reencode = index, flavor, reencode
        self._pos: tuple[FileId | None, int] | None = None
        self._ended = False

    @property
    def is_open(self) -> bool:
        """True while a positioned sequence has not ended or been closed."""
        return self._pos is not None

    def read(self, argument: str | None, buffer_size: int) -> Page:
        """One ``audit_log_read(argument)`` call.

        Raises:
            UdfError: see ``parse_argument``; 3200 "Reader not initialized." for a continuation
                without an open sequence.
        """
        # Step 1
        args = parse_argument(argument)
        if args.close:
            self._pos, self._ended = None, False
            return Page(b"OK" if self.flavor == "percona" else b"null")
        files = self.index.refresh()
        # Step 2
        if args.bookmark is not None or args.start is not None:
            if self.flavor == "percona" and self._pos is not None:
                raise udf_failed("Reader is already initialized; close it with 'null' first.")
            pos = self._locate(files, args.bookmark, args.start)
            if pos is None:  # Percona: no event matches the bookmark exactly
                self._pos, self._ended = None, True
                if self.reencode:
                    return Page(perconatext.page([], ended=True))
                return Page(_OPEN + _NULL + _CLOSE)
            self._pos, self._ended = pos, False
        elif self._pos is None:
            if self.flavor == "percona" and self._ended:
                raise udf_failed("Wrong argument format.")
            raise udf_failed("Reader not initialized.")
        # Steps 3-4
        if self.reencode:
            return self._fill_reencoded(files, args.limit, buffer_size)
        return self._fill(files, args.limit, buffer_size)

    def _locate(
        self, files: list[IndexedFile], bookmark: tuple[str, int] | None, start: str | None
    ) -> tuple[FileId | None, int] | None:
        for f in files:
            if not f.count:
                continue
            if bookmark is not None:
                key = bookmark
                last = (f.ts[-1], f.ids[-1])
                if last < key:
                    continue
                i = _bisect_key(f, key)
                if self.flavor == "percona":
                    if i < f.count and (f.ts[i], f.ids[i]) == key:
                        return (f.ident, i)
                    return None
                return (f.ident, i)
            if start is None or f.ts[-1] < start:
                continue
            return (f.ident, bisect.bisect_left(f.ts, start))
        if self.flavor == "percona" and bookmark is not None:
            return None
        return (files[-1].ident, files[-1].count) if files else (None, 0)

    def _fill(self, files: list[IndexedFile], limit: int | None, buffer_size: int) -> Page:
        fi, idx = self._resolve(files, self._pos or (None, 0))
        parts: list[bytes] = []
        warnings: list[Warning] = []
        used = len(_OPEN) + len(_CLOSE)
        count = 0
        reached_end = False
        while True:
            if limit is not None and count >= limit:
                break
            while fi < len(files) and idx >= files[fi].count:
                if files[fi].live:
                    break
                fi, idx = fi + 1, 0
            if fi >= len(files) or idx >= files[fi].count:
                reached_end = True
                break
            f = files[fi]
            size = f.lengths[idx]
            extra = size + (len(_SEP) if parts else 0)
            if used + extra > buffer_size:
                if size + len(_OPEN) + len(_CLOSE) > buffer_size:
                    if self.flavor == "percona" and not parts:
                        parts.append(f.read_range(idx, idx))
                        count, idx = count + 1, idx + 1
                        break
                    if self.flavor == "oracle":
                        warnings.append(_skipped(f, idx, size, buffer_size))
                        idx += 1
                        continue
                break
            # Take the longest run of this file's events that fits, in one read.
            used += extra
            last, used = _run_end(
                f, idx, used, buffer_size, None if limit is None else limit - count
            )
            blob = f.read_range(idx, last)
            parts.append(blob if f.contiguous(idx, last) else _split_join(f, idx, last, blob))
            count += last - idx + 1
            idx = last + 1
        body = _SEP.join(parts)
        if fi < len(files):
            self._pos = (files[fi].ident, idx)
        else:
            self._pos = (files[-1].ident, files[-1].count) if files else (None, 0)
        # A ``null`` that does not fit any more comes alone in the next page.
        if reached_end and used + len(_NULL) + (len(_SEP) if parts else 0) <= buffer_size:
            self._pos, self._ended = None, True
            body = body + _SEP + _NULL if parts else _NULL
        return Page(_OPEN + body + _CLOSE, warnings, count)

    def _fill_reencoded(
        self, files: list[IndexedFile], limit: int | None, buffer_size: int
    ) -> Page:
        """Percona's reader: events one by one, re-encoded; the end of the log adds ``null``."""
        fi, idx = self._resolve(files, self._pos or (None, 0))
        events: list[bytes] = []
        used = len(perconatext.OPEN)
        reached_end = False
        while True:
            while fi < len(files) and idx >= files[fi].count and not files[fi].live:
                fi, idx = fi + 1, 0
            if fi >= len(files) or idx >= files[fi].count:
                reached_end = True
                break
            if limit is not None and len(events) >= limit:
                break  # Percona ends a batch only when a next event exists
            text = perconatext.event(files[fi].read_range(idx, idx))
            size = len(text) + len(perconatext.SEP)
            if events and used + size + perconatext.RESERVED >= buffer_size:
                break
            events.append(text)
            used += size
            idx += 1
        if fi < len(files):
            self._pos = (files[fi].ident, idx)
        else:
            self._pos = (files[-1].ident, files[-1].count) if files else (None, 0)
        if reached_end:
            self._pos, self._ended = None, True
        return Page(perconatext.page(events, ended=reached_end), [], len(events))

    def _resolve(self, files: list[IndexedFile], pos: tuple[FileId | None, int]) -> tuple[int, int]:
        ident, idx = pos
        for i, f in enumerate(files):
            if f.ident == ident:
                return i, idx
        if ident is None:  # positioned on an empty live file: it is the last one (or rotated)
            for i, f in enumerate(files):
                if f.live:
                    return i, idx
            return len(files), 0
        # The file was pruned: continue with the first file ordered after it.
        for i, f in enumerate(files):
            if f.ident is not None and f.ident > ident:
                return i, 0
        return len(files), 0


def _bisect_key(f: IndexedFile, key: tuple[str, int]) -> int:
    lo, hi = 0, f.count
    while lo < hi:
        mid = (lo + hi) // 2
        if (f.ts[mid], f.ids[mid]) < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _run_end(
    f: IndexedFile, idx: int, used: int, buffer_size: int, left: int | None
) -> tuple[int, int]:
    """The last event of the run from ``idx`` that still fits, and the page size with it.

    ``idx`` itself already fits (``used`` counts it).

    On a contiguous stretch the page grows by exactly the file's bytes, so the end is found by
    bisecting the events' end offsets; elsewhere event by event.
    """
    top = f.count - 1 if left is None else min(f.count - 1, idx + left - 1)
    cap = f.end(idx) + (buffer_size - used)
    last = bisect.bisect_right(range(idx, top + 1), cap, key=f.end) + idx - 1
    if last <= idx:
        return idx, used
    if f.contiguous(idx, last):
        return last, used + f.end(last) - f.end(idx)
    last, size = idx, used
    while last < top and size + len(_SEP) + f.lengths[last + 1] <= buffer_size:
        last += 1
        size += len(_SEP) + f.lengths[last]
    return last, size


def _split_join(f: IndexedFile, first: int, last: int, blob: bytes) -> bytes:
    r"""Events ``first..last`` joined by ``,\n`` when the file stores them otherwise."""
    start = f.offsets[first]
    return _SEP.join(
        blob[f.offsets[i] - start : f.offsets[i] - start + f.lengths[i]]
        for i in range(first, last + 1)
    )


def _skipped(f: IndexedFile, idx: int, size: int, buffer_size: int) -> Warning:
    return Warning(
        "Warning",
        WARN_EVENT_SKIPPED,
        f'Audit log event {{"timestamp": "{f.ts[idx]}", "id": {f.ids[idx]}}} of {size} '
        f"bytes does not fit audit_log_read_buffer_size ({buffer_size}) and was skipped",
    )
