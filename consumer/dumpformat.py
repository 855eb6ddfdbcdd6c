r"""The dump format (``auditstream-dump/1``): manifest, file names and the LOAD DATA text codec.

One home for what ``consumer.dump`` writes and ``consumer.restore``, ``ops.verify.dumps`` and
``ops.reconcile.dumps`` read. A dump of ``<table>`` is a directory (an object prefix) holding:

* ``dump``: ``<table>@<n>.tsv.zst`` chunks (zstd; ``TSV``: tab-separated, ``\`` escapes, ``\N``
  for NULL), the DDL ``<table>.sql`` and ``<table>.json`` (columns, dialect, chunks);
* ``export``: one ``<table>.csv`` (``CSV``: strings in ``"``, the same escapes, ``\r\n``);
* ``manifest.json`` last (``Manifest``): table, method, rows, per-server bookmark range, columns
  and their schema version, every other file's size and SHA-256.

The codec is LOAD DATA's ``ESCAPED BY '\\'``: ``ESCAPES`` maps each special character to its
escape, ``\N`` is NULL. Written by ``escape`` (bytes), read back by ``split_line``.

Traps:

- The dump's bytes are part of the format: a dump redone after a crash must match the ledger's
  manifest checksum, so ``escape`` never changes (``\r`` stays escaped).
- The sink's LOAD DATA line (``consumer.rows.load_data_line`` and the generated
  ``consumer.fastrow``) is a hot path with the same escapes inlined, minus ``\r`` (LOAD DATA
  reads a bare CR as data). ``split_line`` reads it too (tests/consumer/test_dumpformat.py).
- Names and manifests come back from object storage: check names with ``is_object_name`` before
  they become paths, and never execute a manifest's DDL or dialect (``LOAD_CLAUSES`` are ours).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, NamedTuple, TypeVar

import zstandard

from auditstream.errors import ObjectStoreError

FORMAT = "auditstream-dump/1"
MANIFEST = "manifest.json"
CHUNK_SUFFIX, EXPORT_SUFFIX = ".tsv.zst", ".csv"
DATA_SUFFIXES = (CHUNK_SUFFIX, EXPORT_SUFFIX)
TSV = {"fields": "\t", "enclosed": "", "escaped": "\\", "lines": "\n", "null": "\\N"}
CSV = {"fields": ",", "enclosed": '"', "escaped": "\\", "lines": "\r\n", "null": "\\N"}
#: The LOAD DATA clauses that read each method's files: our constants, never a manifest's text.
TSV_LOAD = "FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n'"
CSV_LOAD = (
    "FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY '\\\\'"
    " LINES TERMINATED BY '\\r\\n'"
)
LOAD_CLAUSES = {"dump": TSV_LOAD, "export": CSV_LOAD}
#: Character -> its escape in a field (``ESCAPED BY '\\'``); NULL is ``\N``.
ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\0": "\\0"}
NULL = "\\N"

_BYTE_ESCAPES = [(k.encode(), v.encode()) for k, v in ESCAPES.items()]
_SPECIAL = re.compile(b"[" + re.escape(b"".join(k for k, _ in _BYTE_ESCAPES)) + b"]")
_UNESCAPE: dict[str, str | None] = {v[1]: k for k, v in ESCAPES.items()}
_UNESCAPE |= {'"': '"', "N": None}
_OBJECT = re.compile(r"@\d+\.tsv\.zst|\.csv|\.sql|\.json")
_CHUNK = re.compile(r".*@(\d+)\.tsv\.zst")
_BLOCK = 1 << 20


def chunk_name(table: str, n: int) -> str:
    """The ``n``-th chunk of a ``dump``."""
    return f"{table}@{n}{CHUNK_SUFFIX}"


def export_name(table: str) -> str:
    """The one file of an ``export``."""
    return f"{table}{EXPORT_SUFFIX}"


def ddl_name(table: str) -> str:
    """The table's DDL in a ``dump``."""
    return f"{table}.sql"


def meta_name(table: str) -> str:
    """The metadata file of a ``dump`` (columns, dialect, chunks)."""
    return f"{table}.json"


def is_data(name: str) -> bool:
    """Whether ``name`` holds rows (a chunk or an export), not DDL or metadata."""
    return name.endswith(DATA_SUFFIXES)


def is_object_name(table: str, name: str) -> bool:
    """Whether ``name`` is a file name a dump of ``table`` can hold (besides the manifest)."""
    return name.startswith(table) and _OBJECT.fullmatch(name[len(table) :]) is not None


def chunk_number(name: str) -> int:
    """A chunk's ``n`` (0 for an export): data objects are read in this order."""
    m = _CHUNK.fullmatch(name)
    return int(m[1]) if m else 0


@dataclass(frozen=True)
class DumpObject:
    """One file of a dump: its name inside the dump, size in bytes and hex SHA-256."""

    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    """What a dump holds; ``to_json`` is deterministic (sorted keys, no wall-clock time)."""

    table: str
    method: str
    rows: int
    bookmarks: dict[str, dict[str, Any]]
    columns: list[str]
    ddl: str
    dialect: dict[str, str]
    compression: str
    objects: list[DumpObject] = field(default_factory=list)
    format: str = FORMAT
    #: ``consumer.schema`` version of ``columns`` (None: a manifest from before it was recorded).
    schema_version: int | None = None

    def to_json(self) -> bytes:
        """The ``manifest.json`` bytes."""
        return (json.dumps(asdict(self), sort_keys=True, indent=2) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes, name: str = MANIFEST) -> Manifest:
        """Parse ``manifest.json`` bytes (``name``: the object they came from, for errors).

        Raises:
            ObjectStoreError: not JSON, another format, or fields missing or unknown.
        """
        try:
            raw = json.loads(data)
        except ValueError as exc:
            raise ObjectStoreError(f"cannot read the manifest: {exc}", object=name) from exc
        found = raw.get("format") if isinstance(raw, dict) else None
        if found != FORMAT:
            raise ObjectStoreError(f"unknown dump format {found!r}", object=name)
        try:
            raw["objects"] = [DumpObject(**o) for o in raw["objects"]]
            return cls(**raw)
        except (KeyError, TypeError) as exc:
            raise ObjectStoreError(f"cannot read the manifest: {exc!r}", object=name) from exc


class DataLine(NamedTuple):
    """One line of a data object: its number (from 1) and its fields (None: NULL)."""

    number: int
    fields: list[str | None]


_V = TypeVar("_V")


class DumpEvent(NamedTuple, Generic[_V]):
    """The columns of a dumped event that dump, ``verify`` and ``reconcile`` read by name.

    ``str`` from a data line, ``bytes`` from the dump's raw cursor (bookmarks, chain ends).

    A column the dump does not have (a manifest's ``columns`` lacks it) reads as None, like NULL.
    """

    server_uuid: _V | None
    ts: _V | None
    id: _V | None
    raw: _V | None
    chain: _V | None
    chain_seq: _V | None


#: The columns of ``DumpEvent``, in its order.
EVENT_COLUMNS: tuple[str, ...] = DumpEvent._fields


def event_reader(columns: Sequence[str]) -> Callable[[Sequence[_V | None]], DumpEvent[_V]]:
    """Picks the ``DumpEvent`` out of a row or a line's fields (``columns``: the dump's)."""
    at = [columns.index(c) if c in columns else None for c in EVENT_COLUMNS]

    def read(fields: Sequence[_V | None]) -> DumpEvent[_V]:
        return DumpEvent._make(None if i is None else fields[i] for i in at)

    return read


def escape(value: bytes) -> bytes:
    """``value`` with every character of ``ESCAPES`` escaped (most values: no copy at all)."""
    if _SPECIAL.search(value) is None:
        return value
    for char, escaped in _BYTE_ESCAPES:  # backslash first: the others add backslashes
        value = value.replace(char, escaped)
    return value


def tsv_bytes(row: Sequence[bytes | None]) -> bytes:
    """One ``dump`` line of the server's text of each value (None: NULL)."""
    return b"\t".join([b"\\N" if v is None else escape(v) for v in row]) + b"\n"


def csv_bytes(row: Sequence[bytes | None], numeric: Sequence[bool]) -> bytes:
    """One ``export`` line: numbers bare, other values in ``"`` (None: NULL)."""
    out = [
        b"\\N" if v is None else v if num else b'"' + escape(v).replace(b'"', b'\\"') + b'"'
        for v, num in zip(row, numeric, strict=True)
    ]
    return b",".join(out) + b"\r\n"


def _as_text(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, float):
        return repr(value).encode()
    if isinstance(value, datetime):
        return value.isoformat(sep=" ").encode()
    return value if isinstance(value, bytes) else str(value).encode()


def tsv_line(row: Sequence[Any]) -> str:
    r"""One row of Python values in the dump dialect (tabs, ``\`` escapes, ``\N`` for NULL)."""
    return tsv_bytes([_as_text(v) for v in row]).decode()


def csv_line(row: Sequence[Any]) -> str:
    r"""One row of Python values in the export dialect (strings in ``"``, numbers bare)."""
    numeric = [isinstance(v, int | float | Decimal) for v in row]
    return csv_bytes([_as_text(v) for v in row], numeric).decode()


def split_line(line: str, quoted: bool) -> list[str | None]:
    """The fields of one line, its end removed (TSV if not ``quoted``, else the CSV dialect)."""
    fields: list[str | None] = []
    buf: list[str] = []
    null = in_quotes = False
    sep = "," if quoted else "\t"
    i, n = 0, len(line)
    while i <= n:
        ch = line[i] if i < n else sep
        if ch == "\\" and i + 1 < n:
            value = _UNESCAPE.get(line[i + 1], line[i + 1])
            if value is None and not in_quotes:
                null = True
            else:
                buf.append(value or "")
            i += 2
            continue
        if quoted and ch == '"':
            in_quotes = not in_quotes
        elif ch == sep and not in_quotes:
            fields.append(None if null else "".join(buf))
            buf, null = [], False
        else:
            buf.append(ch)
        i += 1
    return fields


class HashingStream(io.RawIOBase):
    """A readable stream over pieces of bytes that hashes and counts what it hands out."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._buf = b""
        self.size = 0
        self.hash = hashlib.sha256()

    def readable(self) -> bool:
        """Always: this stream is for reading."""
        return True

    def readinto(self, b: Any) -> int:
        """Fill ``b`` from the next pieces; 0 at the end."""
        while not self._buf:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._buf = piece
            self.size += len(piece)
            self.hash.update(piece)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def drain(self) -> None:
        """Read what the parser left, so that the hash covers the whole object."""
        while self.read(_BLOCK):
            pass


def data_lines(stream: io.RawIOBase, name: str) -> Iterator[DataLine]:
    """The lines of data object ``name`` (a zstd TSV chunk or the CSV export).

    Streamed: only the decompressor's window and one line are in memory. A chunk of several
    zstd frames is read across them.
    """
    quoted = name.endswith(EXPORT_SUFFIX)
    raw: Any = io.BufferedReader(stream, _BLOCK)
    if name.endswith(".zst"):
        raw = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
    text = io.TextIOWrapper(raw, encoding="utf-8", newline="" if quoted else "\n")
    for n, line in enumerate(text, start=1):
        yield DataLine(n, split_line(line.rstrip("\r\n") if quoted else line.rstrip("\n"), quoted))
