r"""Links from uploaded dumps: ``[<prefix>/]<table>/manifest.json`` and the objects it lists.

The format is ``consumer.dumpformat``'s (``auditstream-dump/1``): ``dump`` = ``<table>@<n>.tsv.zst``
chunks (tab-separated, ``\`` escapes, ``\N`` for NULL), ``export`` = one ``<table>.csv`` (strings
in ``"``, the same escapes, ``\r\n``).

Steps (``DumpReader.links``), one dump after the other in table-name (= time) order:

1. Read ``manifest.json``; each object is streamed once, hashed as it is parsed: a replaced object
   is named (``object_mismatch``) next to the rows that changed in it.
2. Stream the data objects' rows; each row is an event link, ``where`` = object and line.
3. Compare the first and last link of each server with the manifest's ``first_link`` /
   ``last_link`` (when the manifest records them) and the row count with ``rows``.

Dumps hold events only: pass the gaps (``audit_control`` or the control topic) as ``extras``.
The objects come from ``FileObjects`` (``file://``) or any store with ``list``/``read`` (``oci://``
through ``consumer.upload.OciStore``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Protocol

from auditstream.chain import Link
from auditstream.errors import ConfigError, ObjectStoreError
from auditstream.sqlident import ROTATED_TABLE
from consumer.dumpformat import (
    EVENT_COLUMNS,
    MANIFEST,
    DataLine,
    DumpObject,
    HashingStream,
    Manifest,
    chunk_number,
    data_lines,
    event_reader,
    is_data,
)
from ops.verify.core import interleave, ordered
from ops.verify.report import Finding, NotChained

_BLOCK = 1 << 20


def target_dir(target: str) -> Path:
    """The directory of a ``file:///dir`` target.

    Raises:
        ConfigError: another scheme (only ``file://`` is read here).
    """
    if not target.startswith("file://") or len(target) <= len("file://"):
        raise ConfigError("a target looks like file:///dir or oci://bucket/prefix", target=target)
    return Path(target.removeprefix("file://"))


class Objects(Protocol):
    """Where dumps are read from.

    ``consumer.targets.FileStore`` and ``consumer.upload.OciStore`` have these methods, so an
    ``oci://`` target is verified through the same store rotation uploads with.
    """

    def list(self, prefix: str) -> list[str]:
        """Names of the objects under ``prefix``."""
        ...

    def read(self, name: str) -> Iterator[bytes]:
        """The object's bytes, in pieces."""
        ...


class FileObjects:
    """A ``file://`` target directory as ``Objects`` (names are relative paths)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def list(self, prefix: str) -> list[str]:
        """Every file under ``prefix``, as names relative to the root."""
        base = self.root / prefix
        return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())

    def read(self, name: str) -> Iterator[bytes]:
        """The file's bytes, 1 MiB at a time."""
        with (self.root / name).open("rb") as f:
            while block := f.read(_BLOCK):
                yield block


class DumpReader:
    """Links and object findings of every dump in ``objects`` (see the module docstring).

    Args:
        objects: the target (``FileObjects(Path)``, or the consumer's ``OciStore``).
        prefix: the target's prefix (dumps are ``<prefix>/<table>/<file>``).
        tables: only these dumps (default: every ``audit_data_*`` with a manifest).
    """

    def __init__(self, objects: Objects, prefix: str = "", tables: Iterable[str] | None = None):
        self.objects = objects
        self.prefix = prefix.strip("/")
        self.findings: list[Finding] = []
        if tables is None:
            names = objects.list(self.prefix)
            tables = [n.split("/")[-2] for n in names if n.endswith("/" + MANIFEST)]
        self.tables = sorted(t for t in tables if ROTATED_TABLE.fullmatch(t))

    def links(self, extras: Iterable[Link] = ()) -> Iterator[Link]:
        """Every event link of every dump, in chain order per server, ``extras`` slotted in."""
        return interleave(ordered(x for t in self.tables for x in self._dump(t)), extras)

    def _name(self, table: str, file: str) -> str:
        return "/".join(p for p in (self.prefix, table, file) if p)

    def _dump(self, table: str) -> Iterator[Link]:
        # Step 1
        manifest = self._manifest(table)
        columns = manifest.columns
        missing = set(EVENT_COLUMNS) - set(columns)
        if missing:
            raise NotChained(f"the dump has no column(s) {sorted(missing)}", table=table)
        data = []
        for obj in manifest.objects:
            if is_data(obj.name):
                data.append(obj)
            else:
                self._check_object(table, obj, lambda _stream: iter(()))
        data.sort(key=lambda o: chunk_number(o.name))
        # Step 2
        event = event_reader(columns)
        seen: dict[str, list[Link]] = {}
        rows = 0
        for obj in data:
            name = obj.name
            parse: Callable[[HashingStream], Iterator[DataLine]] = partial(data_lines, name=name)
            for line_no, fields in self._check_object(table, obj, parse):
                rows += 1
                e = event(fields)
                server = e.server_uuid or ""
                link = Link.event(
                    server,
                    e.ts or "",
                    int(e.id or 0),
                    e.raw or "",
                    chain=e.chain,
                    seq=int(e.chain_seq) if e.chain_seq is not None else None,
                    where=f"object {table}/{name} line {line_no}",
                )
                ends = seen.setdefault(server, [link, link])
                ends[1] = link
                yield link
        # Step 3
        self._check_manifest(table, manifest, seen, rows)

    def _check_object(
        self, table: str, obj: DumpObject, parse: Callable[[HashingStream], Iterator[DataLine]]
    ) -> Iterator[DataLine]:
        """Stream ``obj`` once: yield what ``parse`` reads, then compare size and SHA-256."""
        stream = HashingStream(self.objects.read(self._name(table, obj.name)))
        try:
            yield from parse(stream)
            while stream.read(_BLOCK):  # whatever the parser left, for the checksum
                pass
        except (OSError, ObjectStoreError) as exc:
            self._find(table, obj.name, f"cannot be read: {getattr(exc, 'strerror', exc)}")
            return
        digest = stream.hash.hexdigest()
        if stream.size != obj.size or digest != obj.sha256:
            self._find(
                table,
                obj.name,
                f"differs from the manifest: {stream.size} bytes sha256={digest}, "
                f"manifest {obj.size} bytes sha256={obj.sha256}",
            )

    def _manifest(self, table: str) -> Manifest:
        name = self._name(table, MANIFEST)
        try:
            data = b"".join(self.objects.read(name))
        except (OSError, ObjectStoreError) as exc:
            raise ObjectStoreError(f"cannot read the manifest: {exc}", object=name) from exc
        return Manifest.from_json(data, name)

    def _check_manifest(
        self, table: str, manifest: Manifest, seen: dict[str, list[Link]], rows: int
    ) -> None:
        if rows != manifest.rows:
            self._find(table, MANIFEST, f"lists {manifest.rows} rows, the objects hold {rows}")
        for server, entry in manifest.bookmarks.items():
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
