"""Where dumps go: ``oci://<bucket>@<namespace>/<prefix>``, ``oci://<bucket>/<prefix>``, ``file://<dir>``.

Every target has the same layout: ``<prefix>/<table>/<file>`` for each file of a dump, with
``manifest.json`` among them, so a ``file://`` directory can be copied into a bucket as it is.

Writes are create-only: ``put_file`` never replaces an object; it reports that one was already
there, and the caller verifies it against the manifest instead (a re-run after a crash finds its
own earlier upload; anything else is a conflict an operator must see).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Protocol
from urllib.parse import unquote, urlsplit

from pydantic import AfterValidator

from auditstream.errors import ChecksumMismatch, ConfigError, ObjectStoreError
from consumer.dumpformat import DumpObject

_READ = 1 << 20


@dataclass(frozen=True)
class TargetUrl:
    """A parsed target. ``namespace`` None on ``oci://`` means: look it up."""

    scheme: str
    bucket: str = ""
    namespace: str | None = None
    prefix: str = ""
    path: Path | None = None

    @classmethod
    def parse(cls, text: str) -> TargetUrl:
        """Parse a target URL.

        Raises:
            ConfigError: not ``oci://bucket[@namespace][/prefix]`` or ``file:///dir``.
        """
        parts = urlsplit(text)
        if parts.scheme == "file":
            path = unquote(parts.netloc + parts.path)
            if not path:
                raise ConfigError("a file target looks like file:///path/to/dir", target=text)
            return cls(scheme="file", path=Path(path))
        if parts.scheme == "oci" and parts.netloc:
            bucket, _, namespace = parts.netloc.partition("@")
            if not bucket:
                raise ConfigError("an oci target needs a bucket", target=text)
            return cls(
                scheme="oci",
                bucket=bucket,
                namespace=namespace or None,
                prefix=parts.path.strip("/"),
            )
        raise ConfigError(
            "a target looks like oci://bucket@namespace/prefix, oci://bucket/prefix or file:///dir",
            target=text,
        )

    def object_name(self, table: str, file: str) -> str:
        """The deterministic object name of ``file`` of ``table``'s dump."""
        return "/".join(p for p in (self.prefix, table, file) if p)

    def __str__(self) -> str:
        if self.scheme == "file":
            return f"file://{self.path}"
        at = f"@{self.namespace}" if self.namespace else ""
        return f"oci://{self.bucket}{at}/{self.prefix}".rstrip("/")


@dataclass(frozen=True)
class ObjectInfo:
    """What a store says about a stored object.

    ``sha256`` (hex): the whole object's checksum, if the store keeps one. ``multipart_sha256``:
    OCI's ``<base64 SHA-256 of the parts' SHA-256s>-<parts>`` of a multipart object, with the
    ``part_size`` this store writes (an upload with another part size simply will not match).
    """

    size: int
    sha256: str | None = None
    multipart_sha256: str | None = None
    part_size: int | None = None


class ObjectStore(Protocol):
    """The operations rotation needs from a store (``FileStore``, ``upload.OciStore``)."""

    def put_file(self, name: str, path: Path, obj: DumpObject) -> bool:
        """Store ``path`` as ``name`` unless it exists; True if created, False if it existed."""

    def stat(self, name: str) -> ObjectInfo | None:
        """Size (and checksum, if kept) of ``name``, or None if absent."""

    def read(self, name: str) -> Iterator[bytes]:
        """The object's bytes, in pieces (never whole in memory)."""

    def list(self, prefix: str) -> list[str]:
        """Names of the objects under ``prefix``."""


class FileStore:
    """A directory as an object store (the embedded default and the demo's target)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put_file(self, name: str, path: Path, obj: DumpObject) -> bool:
        """Copy, fsync, then hard-link into place: the link fails if the name exists."""
        dest = self._path(name)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.tmp")
            with path.open("rb") as src, tmp.open("wb") as out:
                shutil.copyfileobj(src, out, _READ)
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(tmp, dest)
            except FileExistsError:
                return False
            finally:
                tmp.unlink()
        except OSError as exc:
            raise ObjectStoreError(f"cannot write object: {exc}", object=name) from exc
        return True

    def stat(self, name: str) -> ObjectInfo | None:
        """Size only: a directory keeps no checksum, so verification reads the file back."""
        try:
            return ObjectInfo(size=self._path(name).stat().st_size)
        except FileNotFoundError:
            return None

    def read(self, name: str) -> Iterator[bytes]:
        """The file's bytes, 1 MiB at a time."""
        with self._path(name).open("rb") as f:
            while piece := f.read(_READ):
                yield piece

    def list(self, prefix: str) -> list[str]:
        """Names under ``prefix`` (temporary files of unfinished copies excluded)."""
        base = self._path(prefix) if prefix else self.root
        if not base.exists():
            return []
        return sorted(
            str(p.relative_to(self.root))
            for p in base.rglob("*")
            if p.is_file() and not p.name.startswith(".")
        )

    def _path(self, name: str) -> Path:
        path = (self.root / name).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ConfigError("object name escapes the target directory", object=name)
        return path


def verify(store: ObjectStore, name: str, expected: DumpObject, local: Path | None = None) -> None:
    """Check that ``name`` in ``store`` has the manifest's size and SHA-256.

    Uses the store's own checksum when it keeps one. For a multipart object, the service's
    checksum of part checksums is compared with the same computed from ``local`` (the staged file,
    itself checked against the manifest). Otherwise, or when that does not match, the object is
    read back and hashed: only the stored bytes decide a mismatch.

    Raises:
        ChecksumMismatch: the object is absent, or its size or checksum differ.
    """
    info = store.stat(name)
    if info is None:
        raise ChecksumMismatch("object is missing from the target", object=name)
    if info.size != expected.size:
        raise ChecksumMismatch(
            "stored object size differs from the manifest",
            object=name,
            size=info.size,
            expected=expected.size,
        )
    digest = info.sha256
    if digest is None and local is not None and _parts_match(info, local, expected):
        return
    if digest is None:
        h = hashlib.sha256()
        for piece in store.read(name):
            h.update(piece)
        digest = h.hexdigest()
    if digest != expected.sha256:
        raise ChecksumMismatch(
            "stored object checksum differs from the manifest",
            object=name,
            sha256=digest,
            expected=expected.sha256,
        )


def _parts_match(info: ObjectInfo, local: Path, expected: DumpObject) -> bool:
    """True if ``local`` is the manifest's file and its part checksums give the service's."""
    if not (info.multipart_sha256 and info.part_size and local.exists()):
        return False
    whole, parts = hashlib.sha256(), []
    with local.open("rb") as f:
        while part := f.read(info.part_size):
            whole.update(part)
            parts.append(hashlib.sha256(part).digest())
    composite = base64.b64encode(hashlib.sha256(b"".join(parts)).digest()).decode()
    return (
        whole.hexdigest() == expected.sha256
        and f"{composite}-{len(parts)}" == info.multipart_sha256
    )


#: A settings field holding a target URL as text, checked when the settings are built (so an
#: invalid one is reported with its flag name).
TargetText = Annotated[str, AfterValidator(ConfigError.checked(TargetUrl.parse))]
