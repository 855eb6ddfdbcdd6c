"""Targets: URL forms, deterministic names, the file:// store (create-only) and verification."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from auditstream.errors import ChecksumMismatch, ConfigError
from consumer.dumpformat import DumpObject
from consumer.targets import FileStore, TargetUrl, verify


def test_target_forms() -> None:
    t = TargetUrl.parse("oci://audit@tenancyns/archive/prod")
    assert (t.scheme, t.bucket, t.namespace, t.prefix) == (
        "oci",
        "audit",
        "tenancyns",
        "archive/prod",
    )
    assert t.object_name("audit_data_20260101_000000", "manifest.json") == (
        "archive/prod/audit_data_20260101_000000/manifest.json"
    )
    t = TargetUrl.parse("oci://audit/archive")
    assert t.namespace is None and t.prefix == "archive"
    assert TargetUrl.parse("oci://audit").object_name("t", "f") == "t/f"
    assert TargetUrl.parse("file:///var/dumps").path == Path("/var/dumps")
    assert str(TargetUrl.parse("oci://b@n/p")) == "oci://b@n/p"
    for bad in ("s3://bucket/x", "oci://", "file://", "audit"):
        with pytest.raises(ConfigError):
            TargetUrl.parse(bad)


def _obj(path: Path, data: bytes) -> DumpObject:
    path.write_bytes(data)
    return DumpObject(path.name, len(data), hashlib.sha256(data).hexdigest())


def test_file_store_is_create_only_and_verifiable(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    src = tmp_path / "chunk"
    obj = _obj(src, b"rows\n" * 1000)
    assert store.put_file("p/t/chunk", src, obj) is True
    other = _obj(tmp_path / "other", b"different")
    assert store.put_file("p/t/chunk", tmp_path / "other", other) is False
    assert (tmp_path / "store/p/t/chunk").read_bytes() == b"rows\n" * 1000
    assert store.list("p/") == ["p/t/chunk"]
    verify(store, "p/t/chunk", obj)
    with pytest.raises(ChecksumMismatch, match="size"):
        verify(store, "p/t/chunk", other)
    with pytest.raises(ChecksumMismatch, match="checksum"):
        verify(store, "p/t/chunk", DumpObject("chunk", obj.size, "0" * 64))
    with pytest.raises(ChecksumMismatch, match="missing"):
        verify(store, "p/t/nothing", obj)
    with pytest.raises(ConfigError):
        store.stat("../escape")
