"""The uploaded dumps' side: every ``<prefix>/<table>/manifest.json`` and the objects it lists.

The format is ``consumer.dump``'s (``auditstream-dump/1``); the store is any
``consumer.targets.ObjectStore`` (``file://`` directory or an OCI bucket), so what is checked is
what an operator would restore. Lines are split by ``verify.dumps.split_line``.

Steps (``read_dumps``), one dump at a time, in table-name (= time) order:

1. Read the manifest (``consumer.restore.read_manifest``).
2. Stream each data object (``.tsv.zst`` chunks or the ``.csv`` export), hashing the bytes as
   they arrive; each row in the range goes into the index with its object and line. The whole
   object is never in memory, only the decompressor's window and one line.
3. Compare the object's size and SHA-256 with the manifest (``object_mismatch``), and the rows
   read with the manifest's row count. An object that cannot be read or decompressed is a
   finding too; the rows it should hold are then reported missing, by key.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import zstandard

from auditstream.errors import AuditStreamError
from auditstream.sqlident import ROTATED_TABLE
from consumer.dump import MANIFEST
from consumer.restore import read_manifest
from consumer.targets import ObjectStore, TargetUrl
from ops.reconcile.index import KeyIndex
from ops.reconcile.keys import KeyRange, digest
from ops.verify.dumps import split_line

_DATA = (".tsv.zst", ".csv")
_KEY = ("server_uuid", "ts", "id", "raw")


@dataclass
class DumpsResult:
    """The dumps read, and what did not match their manifests."""

    tables: list[str] = field(default_factory=list)
    rows: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)  # (object, what is wrong)


class _Hashing(io.RawIOBase):
    """A readable stream over an iterator of pieces that hashes and counts what it yields."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._buf = b""
        self.sha = hashlib.sha256()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._buf:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self.sha.update(piece)
            self.size += len(piece)
            self._buf = piece
        n = min(len(buffer), len(self._buf))
        buffer[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def drain(self) -> None:
        """Read what is left (so the hash covers the whole object)."""
        while self.readinto(bytearray(1 << 16)):
            pass


def dump_tables(store: ObjectStore, target: TargetUrl) -> list[str]:
    """The tables with a manifest at the target, in name (= time) order."""
    names = store.list(target.prefix)
    found = set()
    for name in names:
        parts = name.split("/")
        if len(parts) >= 2 and parts[-1] == MANIFEST and ROTATED_TABLE.fullmatch(parts[-2]):
            found.add(parts[-2])
    return sorted(found)


def read_dumps(
    store: ObjectStore, target: TargetUrl, index: KeyIndex, keys: KeyRange
) -> DumpsResult:
    """Read every dump at the target into ``index`` (Steps 1-3).

    Raises:
        ObjectStoreError: the target cannot be listed or a manifest cannot be read.
    """
    result = DumpsResult()
    for table in dump_tables(store, target):
        result.tables.append(table)
        # Step 1
        manifest = read_manifest(store, target, table)
        missing = set(_KEY) - set(manifest.columns)
        if missing:
            result.problems.append((f"{table}/{MANIFEST}", f"no column(s) {sorted(missing)}"))
            continue
        idx = [manifest.columns.index(c) for c in _KEY]
        rows = 0
        for obj in manifest.objects:
            if not obj.name.endswith(_DATA):
                continue
            name = target.object_name(table, obj.name)
            # Step 2
            stream = _Hashing(store.read(name))
            try:
                for line_no, fields in _lines(stream, obj.name):
                    rows += 1
                    uuid, ts, id_, raw = (fields[i] for i in idx)
                    if uuid is None or ts is None or id_ is None or raw is None:
                        result.problems.append((f"{name}:{line_no}", "a key column is NULL"))
                        continue
                    if keys.holds(uuid, ts, int(id_)):
                        where = f"object {name} line {line_no}"
                        index.add("dump", uuid, ts, int(id_), digest(raw), where, table)
                        result.rows += 1
                stream.drain()
            except (AuditStreamError, zstandard.ZstdError, UnicodeDecodeError, ValueError) as exc:
                result.problems.append((name, f"cannot be read: {exc}"))
                continue
            # Step 3
            sha = stream.sha.hexdigest()
            if stream.size != obj.size or sha != obj.sha256:
                result.problems.append(
                    (
                        name,
                        f"differs from the manifest: {stream.size} bytes sha256={sha}, "
                        f"manifest {obj.size} bytes sha256={obj.sha256}",
                    )
                )
        if rows != manifest.rows:
            result.problems.append(
                (f"{table}/{MANIFEST}", f"lists {manifest.rows} rows, the objects hold {rows}")
            )
    return result


def _lines(stream: _Hashing, name: str) -> Iterator[tuple[int, list[str | None]]]:
    quoted = name.endswith(".csv")
    raw: Any = io.BufferedReader(stream, 1 << 20)
    if name.endswith(".zst"):
        raw = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    text = io.TextIOWrapper(raw, encoding="utf-8", newline="" if quoted else "\n")
    for n, line in enumerate(text, start=1):
        yield n, split_line(line.rstrip("\r\n") if quoted else line.rstrip("\n"), quoted)
