"""Checkpoints out of the archive's reach: each signed checkpoint as a small create-only object.

The consumer stores checkpoints in ``audit_control`` with the other control events (one
transaction with their offsets, like gaps). Someone who controls the archive can rewrite that
table, so each checkpoint is also written, once, under ``<prefix>/checkpoints/<server_uuid>/``
of a bucket with a retention rule (``--seal-target``), separate from the dumps. A pass
(any member, any time; idempotent):

1. Read the checkpoints in ``audit_control`` (one per server, number and signature).
2. List the objects already under ``<prefix>/checkpoints/``.
3. Write each missing one create-only (``if-none-match: *``): its name is a function of its
   content (``<checkpoint_seq>-<signature[:16]>.json``), so a retry or another member finds
   the name taken and compares bytes; different bytes there are reported, never overwritten.

Traps: the object's JSON is the record's fields, not its chain position in the archive: verify
reads these objects as the checkpoints an attacker could not rewrite. Someone who may write to
the bucket (but not delete or overwrite under the rule) can still add objects: ``from_json``
checks every field, and ``read_objects`` hands a malformed object to the caller as
``MalformedCheckpoint`` instead of failing the whole read. Step 2 trusts the listing: a name
already listed is not read back (a pass would cost one GET per checkpoint ever written), so
other bytes put there before the pass are not the shipper's to find: ``verify`` reads every
object and reports them (``malformed_checkpoint``, ``bad_signature``, ``unknown_key``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from auditstream import mysql
from auditstream.chain import millis
from auditstream.dsn import MySQLDsn
from auditstream.errors import ArchiveError, ChecksumMismatch, ObjectStoreError
from consumer.dumpformat import DumpObject
from consumer.targets import ObjectStore, TargetUrl

log = logging.getLogger(__name__)

FOLDER = "checkpoints"
FIELDS = (
    "server_uuid", "kind", "checkpoint_seq", "signed_seq", "signed_chain", "at", "key_id",
    "signature", "chain", "chain_seq", "bookmark_timestamp", "bookmark_id",
)  # fmt: skip
#: The fields a checkpoint object must have, and their JSON types (``at``: ms since the epoch).
_REQUIRED: dict[str, type] = {
    "server_uuid": str, "kind": str, "checkpoint_seq": int, "signed_seq": int,
    "signed_chain": str, "at": int, "key_id": str, "signature": str,
}  # fmt: skip
_SELECT = (
    "SELECT server_uuid, kind, checkpoint_seq, signed_seq, signed_chain, at, key_id, signature, "
    "chain, chain_seq, bookmark_timestamp, bookmark_id FROM audit_control "
    "WHERE kind = 'checkpoint' ORDER BY server_uuid, checkpoint_seq, kafka_offset"
)


def prefix_of(target: TargetUrl) -> str:
    """The folder of the checkpoint objects under ``target``."""
    return "/".join(p for p in (target.prefix, FOLDER) if p) + "/"


def object_name(target: TargetUrl, record: dict[str, Any]) -> str:
    """``<prefix>/checkpoints/<server>/<checkpoint_seq, 12 digits>-<signature[:16]>.json``."""
    file = f"{int(record['checkpoint_seq']):012d}-{str(record['signature'])[:16]}.json"
    return prefix_of(target) + f"{record['server_uuid']}/{file}"


def to_json(record: dict[str, Any]) -> bytes:
    """The object's bytes: the fields as JSON, sorted keys, ``at`` in ms since the epoch."""
    out = {k: record.get(k) for k in FIELDS}
    out["at"] = int(millis(record["at"]))
    return json.dumps(out, sort_keys=True, separators=(",", ":")).encode("utf-8") + b"\n"


class MalformedCheckpoint(ObjectStoreError):
    """An object under the checkpoint folder is not a checkpoint record (never retried)."""

    retriable = False


def from_json(data: bytes, name: str = "") -> dict[str, Any]:
    """A checkpoint record from an object's bytes (``at`` back to a UTC datetime).

    Raises:
        MalformedCheckpoint: not JSON, not a checkpoint, or a field missing or of another type.
    """
    try:
        record = json.loads(data)
    except ValueError as exc:  # also bytes that are not UTF-8
        raise MalformedCheckpoint(f"not JSON: {exc}", object=name) from None
    if not isinstance(record, dict) or record.get("kind") != "checkpoint":
        raise MalformedCheckpoint("not a checkpoint record", object=name)
    for key, kind in _REQUIRED.items():
        value = record.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise MalformedCheckpoint(f"{key} is missing or not a {kind.__name__}", object=name)
    try:
        record["at"] = datetime.fromtimestamp(record["at"] / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        raise MalformedCheckpoint("at is not a time", object=name) from None
    return record


def read_archive(dsn: MySQLDsn) -> list[dict[str, Any]]:
    """Step 1: every checkpoint in ``audit_control`` (none without the table or its columns)."""
    try:
        conn = mysql.connect(dsn)
        try:
            cur = conn.cursor()
            cur.execute("SHOW COLUMNS FROM audit_control LIKE 'signature'")
            if not mysql.fetchall(cur):
                return []
            cur.execute(_SELECT)
            rows = mysql.fetchall(cur)
        finally:
            conn.close()
    except mysql.Error as exc:
        raise ArchiveError(f"cannot read the checkpoints: {exc}", database=dsn.database) from exc
    return [dict(zip(FIELDS, (_plain(v) for v in row), strict=True)) for row in rows]


def read_objects(
    store: ObjectStore, target: TargetUrl, malformed: list[MalformedCheckpoint] | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every checkpoint object under ``target``: ``(name, record)``.

    A malformed object is appended to ``malformed`` and skipped (without the list: raised);
    its context names the ``object`` and the ``server_uuid`` folder it lies in (``?``: none).
    """
    folder = prefix_of(target)
    for name in store.list(folder):
        if name.endswith(".json"):
            try:
                yield name, from_json(b"".join(store.read(name)), name)
            except MalformedCheckpoint as exc:
                if malformed is None:
                    raise
                server, _, _ = name.removeprefix(folder).rpartition("/")
                exc.context["server_uuid"] = server or "?"
                malformed.append(exc)


class CheckpointShipper:
    """Write the archive's checkpoints to ``store`` (steps 1-3 of the module docstring)."""

    def __init__(self, dsn: MySQLDsn, store: ObjectStore, target: TargetUrl) -> None:
        self.dsn = dsn
        self.store = store
        self.target = target

    def ship(self) -> list[str]:
        """One pass; return the names written.

        Raises:
            ArchiveError: the archive failed (retriable).
            ObjectStoreError: the bucket failed (retriable).
            ChecksumMismatch: a name is taken by different bytes (an operator must look).
        """
        records = read_archive(self.dsn)  # step 1
        have = set(self.store.list(prefix_of(self.target)))  # step 2
        written = []
        with tempfile.TemporaryDirectory(prefix="auditstream-seal-") as tmp:
            for record in records:
                name = object_name(self.target, record)
                if name in have:
                    continue
                data = to_json(record)
                path = Path(tmp) / "checkpoint.json"
                path.write_bytes(data)
                obj = DumpObject(
                    name.rsplit("/", 1)[-1], len(data), hashlib.sha256(data).hexdigest()
                )
                if self.store.put_file(name, path, obj):  # step 3
                    written.append(name)
                elif b"".join(self.store.read(name)) != data:
                    raise ChecksumMismatch(
                        "a checkpoint object differs from the archive's", object=name
                    )
                have.add(name)
        if written:
            log.info("checkpoints written", extra={"ctx": {"count": len(written)}})
        return written


def _plain(value: Any) -> Any:
    return bytes(value).decode("utf-8") if isinstance(value, bytes | bytearray) else value
