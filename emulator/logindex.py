"""Discovering and indexing audit log files by byte offsets, as the plugin's reader does.

1. Take every file named ``basename[.timestamp].suffix[.gz][[.pwd_id].enc]``; ignore other names
   and every ``.enc`` file (no keyring here).
2. Check each file holds JSON audit events; an unreadable or corrupt file is skipped with a logged
   reason (once per file), as the plugin ignores unreadable files.
3. Order files by the timestamp of their **first** event (then its id; the open file last).
4. Index each file once: offsets, lengths, timestamps and ids of its events. A line shaped
   like the plugin's (``{ "timestamp": ..., "id": ...`` ... ``},``) is trusted; any other line
   is parsed whole and skipped with a logged reason when it is not a JSON event. An event of
   Percona's pretty-printed JSON layout spans the lines from ``  {`` to ``  }``. The open file is
   indexed incrementally from where the last refresh stopped; a torn last line (a crash mid-write)
   is not indexed until its newline arrives.

Traps:
    * A file is identified by its first event ``(timestamp, id)``, which survives both the rename
      at rotation and gzip, so a read position stays valid across them.
    * ``.gz`` files are decompressed into memory once and cached; keep them small in tests.
"""

from __future__ import annotations

import bisect
import gzip
import logging
import os
import re
import zlib
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from emulator.eventtext import HEAD as _HEAD
from emulator.eventtext import event_key

log = logging.getLogger(__name__)

FileId = tuple[str, int]
#: the first and last line of an event in Percona's pretty-printed JSON layout
PRETTY_OPEN, PRETTY_CLOSE = b"  {", b"\n  }"


def file_pattern(basename: str, suffix: str, any_suffix: bool = False) -> re.Pattern[str]:
    """The plugin's name pattern ``basename[.timestamp].suffix[.gz][[.pwd_id].enc]``.

    ``any_suffix``: any one suffix (Percona reads every file named after the base name, so
    ``audit.20240301T000000.json`` is still read once the log became ``audit.jsonl``).
    """
    sfx = r"(?P<suffix>[A-Za-z0-9_-]+)" if any_suffix else rf"(?P<suffix>{re.escape(suffix)})"
    return re.compile(
        rf"^{re.escape(basename)}(?:\.(?P<ts>\d{{8}}T\d{{6}}))?\.{sfx}"
        r"(?P<gz>\.gz)?(?P<enc>(?:\.\d{8}T\d{6}-\d+)?\.enc)?$"
    )


@dataclass
class IndexedFile:
    """One audit log file and the byte ranges of its events."""

    path: Path
    live: bool
    compressed: bool
    offsets: array[int] = field(default_factory=lambda: array("Q"))
    lengths: array[int] = field(default_factory=lambda: array("Q"))
    ids: array[int] = field(default_factory=lambda: array("Q"))
    ts: list[str] = field(default_factory=list)
    scanned: int = 0
    #: events not followed by exactly ",\n" and the next event (sorted); see ``contiguous``
    irregular: list[int] = field(default_factory=list)
    data: bytes | None = None
    inode: tuple[int, int] = (0, 0)

    @property
    def count(self) -> int:
        """Number of whole events indexed."""
        return len(self.ids)

    @property
    def ident(self) -> FileId | None:
        """The first event's bookmark: stable across rotation renames and gzip."""
        return (self.ts[0], self.ids[0]) if self.ids else None

    def _mark(self, i: int) -> None:
        if not self.irregular or self.irregular[-1] != i:
            self.irregular.append(i)

    def contiguous(self, first: int, last: int) -> bool:
        r"""Whether events ``first..last`` are stored as ``ev,\nev,\n...`` with nothing between."""
        k = bisect.bisect_left(self.irregular, first)
        return k == len(self.irregular) or self.irregular[k] >= last

    def end(self, i: int) -> int:
        """The file offset just after event ``i``."""
        return int(self.offsets[i] + self.lengths[i])

    def read_range(self, first: int, last: int) -> bytes:
        """The bytes from event ``first`` to the end of event ``last`` (inclusive), as stored."""
        start = self.offsets[first]
        end = self.offsets[last] + self.lengths[last]
        if self.data is not None:
            return self.data[start:end]
        fd = os.open(self.path, os.O_RDONLY)
        try:
            return os.pread(fd, end - start, start)
        finally:
            os.close(fd)

    def scan(self, blob: bytes, base: int) -> int:
        """Index the whole lines of ``blob`` (which starts at file offset ``base``).

        Returns the number of bytes consumed (up to and including the last newline).
        """
        pos = 0
        end = blob.rfind(b"\n") + 1
        offsets, lengths, ids, stamps = self.offsets, self.lengths, self.ids, self.ts
        last_raw_ts, last_ts = b"", ""
        while pos < end:
            nl = blob.index(b"\n", pos)
            if blob[pos] != 0x7B:  # "{": "[", "]" and blank lines carry no event
                if blob[pos:nl] == PRETTY_OPEN:
                    done = self._scan_pretty(blob, base, pos, end)
                    if done is None:
                        return pos  # its closing line has not been written yet
                    pos = done
                    continue
                pos = nl + 1
                continue
            if nl - pos > 2 and blob[nl - 1] == 0x2C and blob[nl - 2] == 0x7D:  # "},\n"
                stop, regular = nl - 1, True
            else:
                stop, regular = _trim(blob, pos, nl), False
            head = _HEAD.match(blob, pos, stop) if regular else None
            try:
                if head is None:  # an unusual line: parse it whole
                    orjson.loads(memoryview(blob)[pos:stop])
                    ts, ident = event_key(blob[pos:stop])
                else:
                    raw_ts = head.group(1)
                    if raw_ts != last_raw_ts:
                        last_raw_ts, last_ts = raw_ts, raw_ts.decode()
                    ts, ident = last_ts, int(head.group(2))
            except (ValueError, orjson.JSONDecodeError) as exc:
                log.warning(
                    "skipping an unreadable event line",
                    extra={"ctx": {"file": self.path.name, "offset": base + pos, "why": exc}},
                )
            else:
                n = len(offsets)
                if n and offsets[n - 1] + lengths[n - 1] + 2 != base + pos:
                    self._mark(n - 1)
                offsets.append(base + pos)
                lengths.append(stop - pos)
                stamps.append(ts)
                ids.append(ident)
                if not regular:
                    self._mark(n)
            pos = nl + 1
        return end

    def _scan_pretty(self, blob: bytes, base: int, pos: int, end: int) -> int | None:
        """Index one pretty-printed event (Percona's JSON layout) starting at ``pos``.

        Returns the offset after its ``  }`` line, None when that line is not whole yet. Its
        members sit on lines indented by 4 spaces or more and JSON strings hold no raw
        newline, so the first line that is ``  }`` (then ``,`` or a newline) closes it.
        """
        close = pos
        while True:
            close = blob.find(PRETTY_CLOSE, close, end)
            if close < 0:
                return None
            after = close + len(PRETTY_CLOSE)
            if after < end and blob[after] in b",\n":
                break
            close = after
        start, stop = pos + len(PRETTY_OPEN) - 1, after
        nl = blob.find(b"\n", after, end)
        if nl < 0:
            return None
        try:
            orjson.loads(memoryview(blob)[start:stop])
            ts, ident = event_key(blob[start:stop])
        except (ValueError, orjson.JSONDecodeError) as exc:
            log.warning(
                "skipping an unreadable event",
                extra={"ctx": {"file": self.path.name, "offset": base + pos, "why": exc}},
            )
        else:
            n = len(self.offsets)
            if n:
                self._mark(n - 1)
            self.offsets.append(base + start)
            self.lengths.append(stop - start)
            self.ts.append(ts)
            self.ids.append(ident)
            self._mark(n)
        return nl + 1


class AuditLogIndex:
    """The reader's view of a log directory; call ``refresh()`` before each read."""

    def __init__(
        self,
        directory: Path,
        basename: str = "audit",
        suffix: str = "log",
        *,
        any_suffix: bool = False,
    ) -> None:
        self.directory = Path(directory)
        self.basename, self.suffix = basename, suffix
        self._pattern = file_pattern(basename, suffix, any_suffix)
        self._files: dict[Path, IndexedFile] = {}
        self._rejected: dict[Path, tuple[int, int, int]] = {}

    def refresh(self) -> list[IndexedFile]:
        """Rescan the directory; returns the readable files in reading order."""
        seen: dict[Path, IndexedFile] = {}
        try:
            names = [p.name for p in self.directory.iterdir()]
        except FileNotFoundError:
            names = []
        for name in names:
            # Step 1
            m = self._pattern.match(name)
            if not m or m.group("enc"):
                continue
            if m.group("ts") is None and m.group("suffix") != self.suffix:
                continue  # another format's live file, left behind: not the log being written
            path = self.directory / name
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            sig = (st.st_dev, st.st_ino, st.st_size)
            if self._rejected.get(path) == sig:
                continue
            live = m.group("ts") is None and not m.group("gz")
            entry = self._files.get(path)
            fresh = entry is None or entry.inode != (st.st_dev, st.st_ino)
            if fresh or entry is None or not _same(entry, st.st_size, path):
                entry = self._adopt(
                    path, live, bool(m.group("gz")), (st.st_dev, st.st_ino), st.st_size
                )
            try:
                # Steps 2 and 4
                self._update(entry, st.st_size)
            except (OSError, EOFError, zlib.error, ValueError) as exc:
                self._rejected[path] = sig
                log.warning(
                    "skipping an unreadable audit log file",
                    extra={"ctx": {"file": name, "why": str(exc) or type(exc).__name__}},
                )
                continue
            if entry.count or entry.live:
                seen[path] = entry
        self._files = seen
        # Step 3
        return sorted(seen.values(), key=_order)

    def _adopt(
        self, path: Path, live: bool, gz: bool, inode: tuple[int, int], size: int
    ) -> IndexedFile:
        for old in self._files.values():  # a rename keeps the inode: keep the index too
            if old.inode == inode and not gz and old.path != path and _same(old, size, path):
                old.path, old.live = path, live
                return old
        return IndexedFile(path=path, live=live, compressed=gz, inode=inode)

    def _update(self, entry: IndexedFile, size: int) -> None:
        if entry.compressed:
            if entry.data is None:
                with gzip.open(entry.path, "rb") as fh:
                    entry.data = fh.read()
                _check_head(entry.data, entry.path)
                entry.scanned = entry.scan(entry.data, 0)
            return
        if size < entry.scanned:
            raise ValueError("file shrank")
        if size == entry.scanned:
            return
        with entry.path.open("rb") as fh:
            fh.seek(entry.scanned)
            blob = fh.read(size - entry.scanned)
        if entry.scanned == 0:
            _check_head(blob, entry.path)
        entry.scanned += entry.scan(blob, entry.scanned)


def _trim(blob: bytes, pos: int, nl: int) -> int:
    r"""End of the event on the line ``blob[pos:nl]``: without ``\r``, spaces and one ``,``."""
    stop = nl
    while stop > pos and blob[stop - 1] in b" \t\r":
        stop -= 1
    if blob[stop - 1 : stop] == b",":
        stop -= 1
        while stop > pos and blob[stop - 1] in b" \t":
            stop -= 1
    return stop


def _same(entry: IndexedFile, size: int, path: Path) -> bool:
    """Whether ``entry`` describes the file now at ``path`` (inode numbers get reused)."""
    if entry.compressed:
        return True
    if size < entry.scanned:
        return False
    if not entry.count:
        return True
    try:
        with path.open("rb") as fh:
            fh.seek(entry.offsets[0])
            return event_key(fh.read(entry.lengths[0])) == entry.ident
    except (OSError, ValueError):
        return False


def _check_head(blob: bytes, path: Path) -> None:
    head = blob.lstrip()[:1]
    if head and head != b"[":
        raise ValueError(f"{path.name} does not hold a JSON array of audit events")


def _order(f: IndexedFile) -> tuple[int, str, int]:
    if f.ident is None:
        return (1, "", 0)
    return (1 if f.live else 0, f.ident[0], f.ident[1])
