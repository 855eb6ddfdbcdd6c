"""The OCI Object Storage test server speaks the service's error and listing conventions."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from tests.harness.oci_server import NAMESPACE, OciTestServer


@pytest.fixture
def server() -> Iterator[OciTestServer]:
    s = OciTestServer().start()
    s.create_bucket("b")
    yield s
    s.stop()


def call(
    server: OciTestServer, method: str, path: str, body: bytes | None = None, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(server.endpoint + path, data=body, method=method)
    req.add_header("authorization", "Signature test")
    for k, v in headers.items():
        req.add_header(k.replace("_", "-"), v)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


def test_errors_are_json_with_code_and_message(server: OciTestServer) -> None:
    status, headers, body = call(server, "GET", f"/n/{NAMESPACE}/b/b/o/missing")
    assert status == 404 and json.loads(body)["code"] == "ObjectNotFound"
    assert "opc-request-id" in {k.lower() for k in headers}
    status, _, body = call(server, "GET", f"/n/{NAMESPACE}/b/nobucket/o/x")
    assert (status, json.loads(body)["code"]) == (404, "BucketNotFound")
    req = urllib.request.Request(server.endpoint + "/n/")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    info.value.close()
    assert info.value.code == 401


def test_create_only_md5_and_listing_pages(server: OciTestServer) -> None:
    path = f"/n/{NAMESPACE}/b/b/o/"
    assert call(server, "GET", "/n/")[2] == json.dumps(NAMESPACE).encode()
    status, headers, _ = call(server, "PUT", path + "a%2F1", b"one", if_none_match="*")
    assert status == 200 and {"etag", "opc-content-md5"} <= {k.lower() for k in headers}
    assert call(server, "PUT", path + "a%2F1", b"two", if_none_match="*")[0] == 412
    assert (
        call(server, "PUT", path + "a%2F2", b"x", content_md5="AAAAAAAAAAAAAAAAAAAAAA==")[0] == 400
    )
    for i in range(3):
        call(server, "PUT", path + f"a%2Fp{i}", b"p")
    status, _, body = call(server, "GET", f"/n/{NAMESPACE}/b/b/o?prefix=a/p&limit=2")
    page = json.loads(body)
    assert [o["name"] for o in page["objects"]] == ["a/p0", "a/p1"] and page[
        "nextStartWith"
    ] == "a/p2"
    assert server.objects("b")["a/1"] == b"one"


def test_faults_are_counted_down(server: OciTestServer) -> None:
    server.fault("status", count=2, status=503, method="GET")
    codes = [call(server, "GET", "/n/")[0] for _ in range(3)]
    assert codes == [503, 503, 200]
