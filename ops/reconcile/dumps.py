"""The uploaded dumps' side: every ``<prefix>/<table>/manifest.json`` and the objects it lists.

The format is ``consumer.dumpformat``'s (``auditstream-dump/1``); the store is any
``consumer.targets.ObjectStore`` (``file://`` directory or an OCI bucket), so what is checked is
what an operator would restore.

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

from dataclasses import dataclass, field
from typing import NamedTuple

import zstandard

from auditstream.errors import AuditStreamError
from auditstream.sqlident import ROTATED_TABLE
from consumer.dumpformat import (
    EVENT_COLUMNS,
    MANIFEST,
    HashingStream,
    data_lines,
    event_reader,
    is_data,
)
from consumer.restore import read_manifest
from consumer.targets import ObjectStore, TargetUrl
from ops.reconcile.index import KeyIndex
from ops.reconcile.keys import KeyRange, digest

_KEY = EVENT_COLUMNS[:4]  # server_uuid, ts, id, raw


class Problem(NamedTuple):
    """An object (or ``object:line``) that does not match its manifest, and what is wrong."""

    where: str
    what: str


@dataclass
class DumpsResult:
    """The dumps read, and what did not match their manifests."""

    tables: list[str] = field(default_factory=list)
    rows: int = 0
    problems: list[Problem] = field(default_factory=list)


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
            result.problems.append(
                Problem(f"{table}/{MANIFEST}", f"no column(s) {sorted(missing)}")
            )
            continue
        event = event_reader(manifest.columns)
        rows = 0
        for obj in manifest.objects:
            if not is_data(obj.name):
                continue
            name = target.object_name(table, obj.name)
            # Step 2
            stream = HashingStream(store.read(name))
            try:
                for line_no, fields in data_lines(stream, obj.name):
                    rows += 1
                    uuid, ts, id_, raw, _, _ = event(fields)
                    if uuid is None or ts is None or id_ is None or raw is None:
                        result.problems.append(Problem(f"{name}:{line_no}", "a key column is NULL"))
                        continue
                    if keys.holds(uuid, ts, int(id_)):
                        where = f"object {name} line {line_no}"
                        index.add("dump", uuid, ts, int(id_), digest(raw), where, table)
                        result.rows += 1
                stream.drain()
            except (AuditStreamError, zstandard.ZstdError, UnicodeDecodeError, ValueError) as exc:
                result.problems.append(Problem(name, f"cannot be read: {exc}"))
                continue
            # Step 3
            sha = stream.hash.hexdigest()
            if stream.size != obj.size or sha != obj.sha256:
                result.problems.append(
                    Problem(
                        name,
                        f"differs from the manifest: {stream.size} bytes sha256={sha}, "
                        f"manifest {obj.size} bytes sha256={obj.sha256}",
                    )
                )
        if rows != manifest.rows:
            result.problems.append(
                Problem(
                    f"{table}/{MANIFEST}", f"lists {manifest.rows} rows, the objects hold {rows}"
                )
            )
    return result
