r"""Links from uploaded dumps: ``<root>/<table>/manifest.json`` and the objects it lists.

The format is ``consumer.dump``'s (``auditstream-dump/1``), read here without importing the
consumer: ``dump`` = ``<table>@<n>.tsv.zst`` chunks (tab-separated, ``\`` escapes, ``\N`` for
NULL), ``export`` = one ``<table>.csv`` (strings in ``"``, the same escapes, ``\r\n``).

Steps (``DumpReader.links``), one dump after the other in table-name (= time) order:

1. Read ``manifest.json``; check every object's size and SHA-256 against it: a replaced object
   is named (``object_mismatch``) before its rows are even read.
2. Stream the data objects' rows; each row is an event link, ``where`` = object and line.
3. Compare the first and last link of each server with the manifest's ``first_link`` /
   ``last_link`` (when the manifest records them) and the row count with ``rows``.

Dumps hold events only: pass the gaps (``audit_control`` or the control topic) as ``extras``.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import zstandard

from auditstream.chain import Link
from auditstream.errors import ConfigError, ObjectStoreError
from auditstream.sqlident import ROTATED_TABLE
from auditstream.verify.core import interleave, ordered
from auditstream.verify.report import Finding, NotChained

MANIFEST = "manifest.json"
FORMAT = "auditstream-dump/1"
_UNESCAPE = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r", "0": "\0", '"': '"', "N": None}
_BLOCK = 1 << 20
_CHUNK = re.compile(r".*@(\d+)\.tsv\.zst")


def target_dir(target: str) -> Path:
    """The directory of a ``file:///dir`` target.

    Raises:
        ConfigError: another scheme (only ``file://`` is read here).
    """
    if not target.startswith("file://") or len(target) <= len("file://"):
        raise ConfigError("verify reads file:///dir targets only", target=target)
    return Path(target.removeprefix("file://"))


def split_line(line: str, quoted: bool) -> list[str | None]:
    """The fields of one dump line (TSV if not ``quoted``, else the CSV dialect)."""
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


class DumpReader:
    """Links and object findings of every dump under ``root`` (see the module docstring).

    Args:
        root: the target directory (``file:///root``).
        tables: only these dumps (default: every ``audit_data_*`` directory with a manifest).
    """

    def __init__(self, root: Path, tables: Iterable[str] | None = None) -> None:
        self.root = root
        self.findings: list[Finding] = []
        if tables is None:
            tables = [p.parent.name for p in root.glob(f"*/{MANIFEST}")]
        self.tables = sorted(t for t in tables if ROTATED_TABLE.fullmatch(t))

    def links(self, extras: Iterable[Link] = ()) -> Iterator[Link]:
        """Every event link of every dump, in chain order per server, ``extras`` slotted in."""
        return interleave(ordered(x for t in self.tables for x in self._dump(t)), extras)

    def _dump(self, table: str) -> Iterator[Link]:
        # Step 1
        manifest = self._manifest(table)
        columns: list[str] = manifest["columns"]
        missing = {"server_uuid", "ts", "id", "raw", "chain", "chain_seq"} - set(columns)
        if missing:
            raise NotChained(f"the dump has no column(s) {sorted(missing)}", table=table)
        data = []
        for obj in manifest["objects"]:
            path = self.root / table / obj["name"]
            if not self._intact(table, obj, path):
                continue
            if obj["name"].endswith((".tsv.zst", ".csv")):
                data.append(obj["name"])
        data.sort(key=lambda name: int(m[1]) if (m := _CHUNK.fullmatch(name)) else 0)
        # Step 2
        idx = {
            c: columns.index(c) for c in ("server_uuid", "ts", "id", "raw", "chain", "chain_seq")
        }
        seen: dict[str, list[Link]] = {}
        rows = 0
        for name in data:
            for line_no, fields in self._rows(table, name):
                rows += 1
                server = fields[idx["server_uuid"]] or ""
                seq = fields[idx["chain_seq"]]
                link = Link.event(
                    server,
                    fields[idx["ts"]] or "",
                    int(fields[idx["id"]] or 0),
                    fields[idx["raw"]] or "",
                    chain=fields[idx["chain"]],
                    seq=int(seq) if seq is not None else None,
                    where=f"object {table}/{name} line {line_no}",
                )
                ends = seen.setdefault(server, [link, link])
                ends[1] = link
                yield link
        # Step 3
        self._check_manifest(table, manifest, seen, rows)

    def _manifest(self, table: str) -> dict[str, Any]:
        path = self.root / table / MANIFEST
        try:
            manifest: dict[str, Any] = json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise ObjectStoreError(f"cannot read the manifest: {exc}", object=str(path)) from exc
        if manifest.get("format") != FORMAT:
            raise ObjectStoreError(
                f"unknown dump format {manifest.get('format')!r}", object=str(path)
            )
        return manifest

    def _intact(self, table: str, obj: dict[str, Any], path: Path) -> bool:
        digest, size = hashlib.sha256(), 0
        try:
            with path.open("rb") as f:
                while block := f.read(_BLOCK):  # objects are large: never whole in memory
                    digest.update(block)
                    size += len(block)
        except OSError as exc:
            self._find(table, obj["name"], f"cannot be read: {exc.strerror}")
            return False
        if size != obj["size"] or digest.hexdigest() != obj["sha256"]:
            self._find(
                table,
                obj["name"],
                f"differs from the manifest: {size} bytes sha256={digest.hexdigest()}, "
                f"manifest {obj['size']} bytes sha256={obj['sha256']}",
            )
        return True  # read it anyway: its rows say which links changed

    def _rows(self, table: str, name: str) -> Iterator[tuple[int, list[str | None]]]:
        path = self.root / table / name
        quoted = name.endswith(".csv")
        with path.open("rb") as raw:
            stream: Any = raw
            if name.endswith(".zst"):
                stream = zstandard.ZstdDecompressor().stream_reader(raw)
            text = io.TextIOWrapper(stream, encoding="utf-8", newline="\n" if not quoted else "")
            for n, line in enumerate(text, start=1):
                yield n, split_line(line.rstrip("\r\n") if quoted else line.rstrip("\n"), quoted)

    def _check_manifest(
        self, table: str, manifest: dict[str, Any], seen: dict[str, list[Link]], rows: int
    ) -> None:
        if rows != manifest.get("rows", rows):
            self._find(table, MANIFEST, f"lists {manifest['rows']} rows, the objects hold {rows}")
        for server, entry in (manifest.get("bookmarks") or {}).items():
            ends = seen.get(server)
            for key, at in (("first_link", 0), ("last_link", 1)):
                want = entry.get(key)
                if want is None:
                    continue
                got = [ends[at].seq, ends[at].chain] if ends else None
                if got != list(want):
                    self._find(table, MANIFEST, f"{key} of {server} is {want}, the rows say {got}")

    def _find(self, table: str, name: str, detail: str) -> None:
        self.findings.append(
            Finding("object_mismatch", "-", None, "-", f"object {table}/{name}", detail)
        )
