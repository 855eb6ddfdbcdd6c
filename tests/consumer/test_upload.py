"""OciStore: the real oci SDK against the OCI test server."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from auditstream.errors import ChecksumMismatch, ConfigError, ObjectStoreError
from consumer.dumpformat import DumpObject
from consumer.targets import TargetUrl, verify
from consumer.upload import OciOptions, OciStore
from tests.harness.oci_server import NAMESPACE, OciTestServer

PART = 64 * 1024


def make_store(
    server: OciTestServer, config: Path, target: str = "oci://audit/pre", **kw: object
) -> OciStore:
    options = OciOptions(
        config_file=config,
        endpoint=server.endpoint,
        part_size=PART,
        retry_attempts=3,
        retry_base_seconds=0.01,
        retry_max_wait_seconds=0.05,
        circuit_breaker=False,
        **kw,  # type: ignore[arg-type]
    )
    return OciStore(TargetUrl.parse(target), options)


def staged(tmp_path: Path, size: int) -> tuple[Path, DumpObject]:
    data = os.urandom(size)
    path = tmp_path / f"obj{size}"
    path.write_bytes(data)
    return path, DumpObject(path.name, size, hashlib.sha256(data).hexdigest())


def test_single_part_uses_the_service_checksum(
    oci_server: OciTestServer, oci_config: Path, tmp_path: Path
) -> None:
    store = make_store(oci_server, oci_config)
    assert store.namespace == NAMESPACE  # looked up: oci://bucket/prefix
    assert ("GET", "/n", 200) in oci_server.requests
    path, obj = staged(tmp_path, 5000)
    assert store.put_file("pre/t/a", path, obj) is True
    info = store.stat("pre/t/a")
    assert info is not None and (info.size, info.sha256) == (5000, obj.sha256)
    assert oci_server.authorizations and all(
        a.startswith("Signature ") for a in oci_server.authorizations
    )
    assert (
        'keyId="ocid1.tenancy.oc1..aaaatesttenancy/ocid1.user.oc1..aaaatestuser/'
        in oci_server.authorizations[0]
    )
    # create-only: a second write is refused and the object is left alone
    other_path, other = staged(tmp_path, 4000)
    assert store.put_file("pre/t/a", other_path, other) is False
    assert oci_server.objects()["pre/t/a"] == path.read_bytes()
    assert store.stat("pre/t/missing") is None


def test_multipart_in_parallel_parts_is_read_back(
    oci_server: OciTestServer, oci_config: Path, tmp_path: Path
) -> None:
    store = make_store(oci_server, oci_config, target=f"oci://audit@{NAMESPACE}/pre", parallel=4)
    path, obj = staged(tmp_path, 5 * PART + 123)
    assert store.put_file("pre/t/big", path, obj) is True
    parts = [p for m, p, s in oci_server.requests if m == "PUT" and "/u/" in p]
    assert len(parts) == 6
    assert ("GET", "/n", 200) not in oci_server.requests  # namespace given
    info = store.stat("pre/t/big")
    assert info is not None and info.size == obj.size and info.sha256 is None
    verify(store, "pre/t/big", obj)  # reads it back
    assert b"".join(store.read("pre/t/big")) == path.read_bytes()
    assert store.list("pre/") == ["pre/t/big"]
    # an existing object stops a multipart upload too
    assert store.put_file("pre/t/big", path, obj) is False
    assert oci_server.uploads == {}


def test_unfinished_uploads_are_aborted(
    oci_server: OciTestServer, oci_config: Path, tmp_path: Path
) -> None:
    import oci

    store = make_store(oci_server, oci_config)
    details = oci.object_storage.models.CreateMultipartUploadDetails(object="pre/t/c")
    store.client.create_multipart_upload(NAMESPACE, "audit", details)  # a crashed earlier attempt
    assert len(oci_server.uploads) == 1
    path, obj = staged(tmp_path, 3 * PART)
    assert store.put_file("pre/t/c", path, obj)
    assert oci_server.uploads == {}


def test_storm_beyond_retries_is_a_retriable_error_without_leftovers(
    oci_server: OciTestServer, oci_config: Path, tmp_path: Path
) -> None:
    store = make_store(oci_server, oci_config, target=f"oci://audit@{NAMESPACE}/pre")
    path, obj = staged(tmp_path, 3 * PART)
    oci_server.fault("status", count=100, status=503, method="PUT")
    with pytest.raises(ObjectStoreError) as info:
        store.put_file("pre/t/d", path, obj)
    assert info.value.retriable and "503" in str(info.value)
    assert oci_server.uploads == {} and oci_server.objects() == {}


def test_staged_file_differing_from_manifest_is_rejected_by_the_service(
    oci_server: OciTestServer, oci_config: Path, tmp_path: Path
) -> None:
    store = make_store(oci_server, oci_config, target=f"oci://audit@{NAMESPACE}/pre")
    path, obj = staged(tmp_path, 1000)
    path.write_bytes(b"x" * 1000)  # same size, other bytes
    with pytest.raises(ChecksumMismatch):
        store.put_file("pre/t/e", path, obj)
    assert oci_server.objects() == {}


def test_missing_config_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        OciStore(TargetUrl.parse("oci://b@n/p"), OciOptions(config_file=tmp_path / "none"))


def test_multipart_verified_by_the_service_part_checksums(
    oci_server: OciTestServer, oci_config: Path, tmp_path: Path
) -> None:
    store = make_store(oci_server, oci_config, target=f"oci://audit@{NAMESPACE}/pre")
    path, obj = staged(tmp_path, 3 * PART + 7)
    assert store.put_file("pre/t/m", path, obj)
    info = store.stat("pre/t/m")
    assert info is not None and info.multipart_sha256 is not None
    assert info.multipart_sha256.endswith("-4")
    oci_server.requests.clear()
    verify(store, "pre/t/m", obj, path)
    assert [m for m, _, _ in oci_server.requests] == ["HEAD"]  # nothing read back

    # another part size than the upload's: no match, so it reads back, and that passes
    other = make_store(oci_server, oci_config, target=f"oci://audit@{NAMESPACE}/pre")
    object.__setattr__(other.options, "part_size", PART * 2)
    verify(other, "pre/t/m", obj, path)
    assert any(m == "GET" for m, _, _ in oci_server.requests)

    # replaced by another writer (same size, other bytes): read back, and it differs
    stored = bytearray(oci_server.objects()["pre/t/m"])
    stored[PART + 1] ^= 0x55
    oci_server.put("pre/t/m", bytes(stored))
    with pytest.raises(ChecksumMismatch, match="checksum"):
        verify(store, "pre/t/m", obj, path)
