"""Audit log files as the ``audit_log`` plugin writes them in JSON format (or Percona's JSONL).

A file is one JSON array: ``[`` on the first line, then one event per line, each followed by
``,``. ``layout="jsonl"`` (Percona's JSONL) only changes how a dict is serialised: compact,
``{"timestamp":"...","id":0,...}``; ``layout="pretty"`` (Percona's JSON) writes a dict over
several lines, from ``  {`` to ``  }``, as Percona's formatter does. The
file being written has no closing ``]``; a rotated (closed) file has one. Rotated files are named
``basename.YYYYMMDDThhmmss.suffix`` after the UTC time of their **last** event and may be gzipped.
See ``emulator.logindex`` for the reading side.

Traps:
    * Raw event text (``str``/``bytes``) is written byte for byte; only ``timestamp`` and ``id``
      are read out of it (for rotation names and the id counters). Consumers compare ``raw``
      against the file, so never re-serialise it.
    * ``id`` is a counter within the same second (Oracle) or a global counter (Percona). A dict
      that carries its own ``id`` keeps it, even if that breaks the rule (tests use this).
    * Two writers on one directory (a test process and a server process) each follow a rotation
      made by the other (``write`` reopens the live file), but their id counters are separate:
      within one second they may repeat ids. Write through one of them at a time.
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, Literal

import orjson

from emulator.eventtext import (
    HEAD,
    TS_FORMAT,
    event_key,
    format_event,
    format_pretty,
    ordered,
    rotated_name,
    utc_now_text,
)

log = logging.getLogger(__name__)

__all__ = [
    "HEAD",
    "AuditLogWriter",
    "event_key",
    "format_event",
    "rotated_name",
    "utc_now_text",
]

Flavor = Literal["oracle", "percona"]
Layout = Literal["json", "jsonl", "pretty"]
Event = dict[str, Any] | str | bytes
_TS_FORMAT = TS_FORMAT


class AuditLogWriter:
    """Appends events to ``<directory>/<basename>.<suffix>`` like the plugin; thread-safe.

    Args:
        directory: the log directory (created if missing).
        flavor: ``oracle`` (per-second ids) or ``percona`` (global ids).
        layout: ``json`` (the plugin's spacing, one line), ``jsonl`` (compact, Percona's JSONL)
            or ``pretty`` (Percona's JSON: one event over several lines; dicts only).
        rotate_on_size: rotate once the open file reaches this many bytes (0: never).
        compress: gzip rotated files (``.json.gz``).
        max_size: prune the oldest rotated files while they total more bytes than this (0: off).
        prune_seconds: prune rotated files whose last event is older than this (0: off).
        flush_each: flush after every ``write`` (the emulator reads the files from disk).
        clock: returns the ``timestamp`` text for events without one (tests pin it).
    """

    def __init__(
        self,
        directory: Path,
        *,
        flavor: Flavor = "oracle",
        layout: Layout = "json",
        basename: str = "audit",
        suffix: str = "log",
        rotate_on_size: int = 0,
        compress: bool = False,
        max_size: int = 0,
        prune_seconds: int = 0,
        flush_each: bool = True,
        clock: Callable[[], str] = utc_now_text,
    ) -> None:
        self.directory = Path(directory)
        self.flavor: Flavor = flavor
        self.layout: Layout = layout
        self.basename, self.suffix = basename, suffix
        self.rotate_on_size, self.compress = rotate_on_size, compress
        self.max_size, self.prune_seconds = max_size, prune_seconds
        self.flush_each, self.clock = flush_each, clock
        self.last: tuple[str, int] | None = None
        self._events_in_file = 0
        self._lock = threading.RLock()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO = self._open()

    @property
    def path(self) -> Path:
        """The file being written."""
        return self.directory / f"{self.basename}.{self.suffix}"

    def _open(self) -> BinaryIO:
        """Open the live file; resume an existing one, dropping a torn last line (a crash)."""
        path = self.path
        if path.exists() and path.stat().st_size > 0:
            data = path.read_bytes()
            end = data.rfind(b"\n") + 1
            if end < len(data):
                log.warning("dropping a torn last line", extra={"ctx": {"file": str(path)}})
                with path.open("r+b") as fh:
                    fh.truncate(end)
            found = None
            for line in reversed(data[:end].splitlines()):
                raw = line.rstrip().rstrip(b",").rstrip()
                if raw.startswith(b"{"):
                    try:
                        found = event_key(raw)
                    except ValueError:
                        continue
                    break
            self._events_in_file = 1 if found else 0
            if found:
                self.last = found
            else:  # no one-line event at the end: a pretty-printed one, or none
                self._recover_last_from_rotated()
            return path.open("ab")
        self._recover_last_from_rotated()
        fresh: BinaryIO = path.open("wb")
        fresh.write(b"[\n")
        fresh.flush()
        return fresh

    def _recover_last_from_rotated(self) -> None:
        from emulator.logindex import AuditLogIndex  # the reader knows the file layout

        index = AuditLogIndex(
            self.directory, self.basename, self.suffix, any_suffix=self.flavor == "percona"
        )
        for f in reversed(index.refresh()):
            if f.count:
                self.last = (f.ts[-1], f.ids[-1])
                if f.live and f.path == self.path:
                    self._events_in_file = f.count
                return

    def _next_id(self, ts: str) -> int:
        if self.last is None:
            return 0
        if self.flavor == "percona":
            return self.last[1] + 1
        return self.last[1] + 1 if self.last[0] == ts else 0

    def write(self, event: Event) -> tuple[str, int]:
        """Append one event; returns its bookmark ``(timestamp, id)``.

        Raises:
            ValueError: raw text without a ``timestamp`` and ``id``, or holding a newline.
        """
        with self._lock:
            self._follow()
            if isinstance(event, dict):
                ev = dict(event)
                ts = ev.setdefault("timestamp", self.clock())
                if "id" not in ev:
                    ev["id"] = self._next_id(ts)
                raw = self._format(ev)
                key = (str(ts), int(ev["id"]))
            else:
                raw = event.encode("utf-8") if isinstance(event, str) else bytes(event)
                raw = raw.rstrip()
                raw = raw.removesuffix(b",").rstrip()
                if b"\n" in raw:
                    raise ValueError("an event must fit on one line")
                key = event_key(raw)
            self._append(raw, key)
            if self.flush_each:
                self._file.flush()
            return key

    def _format(self, event: dict[str, Any]) -> bytes:
        if self.layout == "jsonl":
            return orjson.dumps(ordered(event))
        if self.layout == "pretty":
            return format_pretty(event)
        return format_event(event)

    def _follow(self) -> None:
        """Reopen when another writer rotated the live file away from us, or after ``close``."""
        try:
            moved = self._file.closed or (
                os.fstat(self._file.fileno()).st_ino != self.path.stat().st_ino
            )
        except FileNotFoundError:
            moved = True
        if moved:
            self._file.close()
            self._events_in_file = 0
            self._file = self._open()

    def write_raw_lines(self, lines: Iterable[tuple[bytes, str, int]]) -> int:
        """Append pre-formatted events ``(raw, timestamp, id)`` in bulk (generators, benchmarks)."""
        n = 0
        with self._lock:
            if self.rotate_on_size:
                for raw, ts, ident in lines:
                    self._append(raw, (ts, ident))
                    n += 1
            else:
                batch: list[bytes] = []
                for raw, ts, ident in lines:
                    batch.append(raw)
                    batch.append(b",\n")
                    self.last = (ts, ident)
                    n += 1
                    if len(batch) >= 4096:
                        self._file.write(b"".join(batch))
                        batch.clear()
                self._file.write(b"".join(batch))
                self._events_in_file += n
            self._file.flush()
        return n

    def _append(self, raw: bytes, key: tuple[str, int]) -> None:
        self._file.write(raw + b",\n")
        self.last = key
        self._events_in_file += 1
        if self.rotate_on_size and self._file.tell() >= self.rotate_on_size:
            self.rotate()

    def flush(self) -> None:
        """Make every written event visible to readers."""
        with self._lock:
            self._file.flush()

    def rotate(self) -> Path | None:
        """Close the live file (``]``), rename it after its last event, maybe gzip, then prune.

        Returns the rotated file, or None when the live file held no event (nothing rotates).
        """
        with self._lock:
            if self._events_in_file == 0 or self.last is None:
                return None
            self._file.write(b"]\n")
            self._file.close()
            stamp = datetime.strptime(self.last[0], _TS_FORMAT).replace(tzinfo=UTC)
            target = self.directory / rotated_name(self.basename, self.suffix, self.last[0])
            while target.exists() or target.with_name(target.name + ".gz").exists():
                # Two rotations within one second would collide: take the next free second.
                stamp += timedelta(seconds=1)
                target = self.directory / rotated_name(
                    self.basename, self.suffix, stamp.strftime(_TS_FORMAT)
                )
            self.path.replace(target)
            if self.compress:
                gz = target.with_name(target.name + ".gz")
                with target.open("rb") as src, gzip.open(gz, "wb", compresslevel=1) as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                target.unlink()
                target = gz
            self._events_in_file = 0
            fh: BinaryIO = self.path.open("wb")
            fh.write(b"[\n")
            fh.flush()
            self._file = fh
            self.prune()
            return target

    def prune(self) -> list[Path]:
        """Delete rotated files beyond ``max_size`` / ``prune_seconds``; returns the deleted."""
        pattern = re.compile(
            rf"^{re.escape(self.basename)}\.(\d{{8}}T\d{{6}})\.{re.escape(self.suffix)}(\.gz)?$"
        )
        rotated = sorted(
            (m.group(1), p) for p in self.directory.iterdir() if (m := pattern.match(p.name))
        )
        gone: list[Path] = []
        if self.prune_seconds:
            now = datetime.now(UTC)
            for stamp, path in list(rotated):
                age = now - datetime.strptime(stamp, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
                if age.total_seconds() > self.prune_seconds:
                    gone.append(path)
                    rotated.remove((stamp, path))
        if self.max_size:
            total = sum(p.stat().st_size for _, p in rotated)
            while rotated and total > self.max_size:
                _, path = rotated.pop(0)
                total -= path.stat().st_size
                gone.append(path)
        for path in gone:
            path.unlink(missing_ok=True)
            log.info("pruned rotated audit log", extra={"ctx": {"file": path.name}})
        return gone

    def __enter__(self) -> AuditLogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Flush and close the live file without rotating it (a clean shutdown keeps it open)."""
        with self._lock:
            if not self._file.closed:
                self._file.flush()
                self._file.close()
