"""An OCI Object Storage test server: the REST paths the real ``oci`` SDK uses, in memory.

No emulator exists that the SDK's multipart upload can use, so this is a fake where no real thing
can run. It speaks (API 20160918): ``GET /n/`` (namespace); ``PUT|HEAD|GET|DELETE
/n/{ns}/b/{bucket}/o/{object}``; ``GET /n/{ns}/b/{bucket}/o`` (list); ``POST /n/{ns}/b/{bucket}/u``
(create multipart), ``PUT .../u/{object}?uploadId=&uploadPartNum=`` (part), ``POST
.../u/{object}?uploadId=`` (commit), ``DELETE`` (abort), ``GET .../u`` (list uploads).

Like the service it answers ``etag``, ``opc-content-md5`` / ``opc-multipart-md5``, checks
``Content-MD5`` and ``opc-content-sha256`` of bodies, keeps and returns ``opc-content-sha256``
(single-part objects written with ``opc-checksum-algorithm: SHA256``) and ``opc-multipart-sha256``,
refuses writes with ``if-none-match: *`` when the object exists (412) and answers errors as JSON
``{code, message}``. Retention rules (``/n/{ns}/b/{bucket}/retentionRules[/{id}]``: create, list,
get, delete) protect objects from delete and overwrite (``tests.harness.oci_retention``). Signatures are not checked, but an ``authorization`` header is required.

Faults (``fault(...)``): a status storm (e.g. 503 for the next N matching requests), a connection
dropped after half a request body was read, and slow responses.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from tests.harness.oci_retention import Rules

NAMESPACE = "testns"
_TIME = "2026-01-01T00:00:00.000Z"


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


@dataclass
class StoredObject:
    data: bytes
    etag: str
    md5: str | None = None
    sha256: str | None = None
    multipart_md5: str | None = None
    multipart_sha256: str | None = None
    modified: float = field(default_factory=time.time)


@dataclass
class Upload:
    bucket: str
    name: str
    create_only: bool
    algorithm: str | None
    parts: dict[int, tuple[bytes, str, str, str]] = field(default_factory=dict)


@dataclass
class Fault:
    """``action``: ``status`` (answer ``status``), ``drop`` (close mid-body) or ``delay``."""

    action: str
    count: int
    method: str | None = None
    path: str | None = None
    status: int = 503
    seconds: float = 0.0


class OciTestServer:
    """The server; ``start()`` it, ``endpoint`` is what the SDK's ``service_endpoint`` gets."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.buckets: dict[str, dict[str, StoredObject]] = {}
        self.uploads: dict[str, Upload] = {}
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, int]] = []
        self.authorizations: list[str] = []
        self.rules = Rules()  # retention rules (tests.harness.oci_retention)
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def endpoint(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> OciTestServer:
        handler = type("Handler", (_Handler,), {"state": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def reset(self) -> None:
        with self.lock:
            self.buckets.clear()
            self.uploads.clear()
            self.faults.clear()
            self.requests.clear()
            self.authorizations.clear()
            self.rules.clear()

    def create_bucket(self, name: str) -> None:
        with self.lock:
            self.buckets.setdefault(name, {})

    def fault(self, action: str, count: int = 1, **kwargs: Any) -> None:
        """Inject a fault for the next ``count`` requests matching ``method``/``path`` (substring)."""
        with self.lock:
            self.faults.append(Fault(action, count, **kwargs))

    def objects(self, bucket: str = "audit") -> dict[str, bytes]:
        with self.lock:
            return {k: v.data for k, v in self.buckets.get(bucket, {}).items()}

    def put(self, name: str, data: bytes, bucket: str = "audit") -> None:
        """Store an object directly (as another writer would), without any checksum but MD5."""
        with self.lock:
            self.buckets[bucket][name] = StoredObject(
                data,
                uuid.uuid4().hex,
                md5=_b64(hashlib.md5(data).digest()),  # noqa: S324
            )

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if f.count > 0 and f.method in (None, method) and (f.path or "") in path:
                    f.count -= 1
                    return f
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: OciTestServer

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    # ------------------------------------------------------------------ plumbing

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path, query = url.path, {k: v[0] for k, v in parse_qs(url.query).items()}
        fault = self.state.take_fault(method, path)
        if fault is not None and fault.action == "delay":
            time.sleep(fault.seconds)
        if fault is not None and fault.action == "drop":
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length // 2)
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            self.state.requests.append((method, path, -1))
            return
        body = self._body()
        if fault is not None and fault.action == "status":
            self._error(fault.status, "ServiceUnavailable", "injected fault")
            return
        if "authorization" not in self.headers:
            self._error(401, "NotAuthenticated", "missing authorization header")
            return
        self.state.authorizations.append(self.headers["authorization"])
        parts = path.split("/")
        try:
            self._route(method, parts, query, body)
        except KeyError as exc:
            self._error(404, "NotFound", f"not found: {exc}")

    def _route(self, method: str, parts: list[str], query: dict[str, str], body: bytes) -> None:
        # parts: ['', 'n', ns, 'b', bucket, kind, *name]
        if method == "GET" and parts[1:2] == ["n"] and parts[2:] in ([], [""]):
            self._json(200, NAMESPACE)
            return
        if len(parts) < 6 or parts[1] != "n" or parts[3] != "b":
            self._error(404, "NotFound", "unknown path")
            return
        if parts[2] != NAMESPACE:
            self._error(404, "NamespaceNotFound", "unknown namespace")
            return
        bucket = parts[4]
        if bucket not in self.state.buckets:
            self._error(404, "BucketNotFound", f"bucket {bucket} does not exist")
            return
        kind, name = parts[5], unquote("/".join(parts[6:]))
        if kind == "retentionRules":
            self._retention(method, bucket, name, body)
            return
        handler = {
            ("o", "PUT"): self._put_object,
            ("o", "HEAD"): self._get_object,
            ("o", "GET"): self._get_object if name else self._list_objects,
            ("o", "DELETE"): self._delete_object,
            ("u", "POST"): self._commit if name else self._create_upload,
            ("u", "PUT"): self._upload_part,
            ("u", "DELETE"): self._abort,
            ("u", "GET"): self._list_uploads,
        }.get((kind, method))
        if handler is None:
            self._error(405, "MethodNotAllowed", "not supported here")
            return
        handler(bucket, name, query, body)

    def _body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            out = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return bytes(out)
                out += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        # Recorded before answering: the client may look at ``requests`` as soon as it has one.
        self.state.requests.append((self.command, urlsplit(self.path).path, status))
        self.send_response(status)
        self.send_header("opc-request-id", uuid.uuid4().hex)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if "content-length" not in (headers or {}):
            self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: Any, headers: dict[str, str] | None = None) -> None:
        self._send(
            status,
            json.dumps(value).encode(),
            {"content-type": "application/json", **(headers or {})},
        )

    def _error(self, status: int, code: str, message: str) -> None:
        self._json(status, {"code": code, "message": message})

    def _check_digests(self, body: bytes) -> tuple[str, str | None] | None:
        md5 = _b64(hashlib.md5(body).digest())  # noqa: S324 - the service's own ETag digest
        given = self.headers.get("content-md5")
        if given and given != md5:
            self._error(400, "InvalidDigest", "The computed MD5 does not match Content-MD5")
            return None
        sha = None
        if (self.headers.get("opc-checksum-algorithm") or "").upper() == "SHA256":
            sha = _b64(hashlib.sha256(body).digest())
            given = self.headers.get("opc-content-sha256")
            if given and given != sha:
                self._error(400, "UnmatchedContentSHA256", "The computed SHA256 does not match")
                return None
        return md5, sha

    # ------------------------------------------------------------------ objects

    def _exists_conflict(self, bucket: str, name: str, create_only: bool) -> bool:
        if create_only and name in self.state.buckets[bucket]:
            self._error(412, "IfNoneMatchFailed", "The object already exists")
            return True
        return self._protected(bucket, name, "overwritten")

    def _protected(self, bucket: str, name: str, what: str) -> bool:
        obj = self.state.buckets[bucket].get(name)
        rule = self.state.rules.blocking(bucket, obj.modified) if obj is not None else None
        if rule is not None:
            self._error(
                409, "Conflict",
                f"object {name} is protected by retention rule {rule.display_name} "
                f"and cannot be {what}",
            )  # fmt: skip
            return True
        return False

    def _retention(self, method: str, bucket: str, rule_id: str, body: bytes) -> None:
        rules = self.state.rules
        with self.state.lock:
            mine = rules.by_bucket.setdefault(bucket, {})
            if method == "POST" and not rule_id:
                try:
                    rule = rules.create(bucket, json.loads(body or b"{}"))
                except ValueError as exc:
                    self._error(400, "InvalidParameter", str(exc))
                    return
                self._json(200, rule.to_json(), {"etag": rule.etag})
            elif method == "GET" and not rule_id:
                ordered = sorted(mine.values(), key=lambda r: r.created, reverse=True)
                self._json(200, {"items": [r.to_json() for r in ordered]})
            elif method == "GET":
                found = mine[rule_id]
                self._json(200, found.to_json(), {"etag": found.etag})
            elif method == "DELETE":
                if mine[rule_id].locked(datetime.now(UTC)):
                    self._error(409, "Conflict", f"retention rule {rule_id} is locked")
                    return
                del mine[rule_id]
                self._send(204)
            else:
                self._error(405, "MethodNotAllowed", "not supported here")

    def _put_object(self, bucket: str, name: str, query: dict[str, str], body: bytes) -> None:
        digests = self._check_digests(body)
        if digests is None:
            return
        md5, sha = digests
        with self.state.lock:
            if self._exists_conflict(bucket, name, self.headers.get("if-none-match") == "*"):
                return
            obj = StoredObject(body, uuid.uuid4().hex, md5=md5, sha256=sha)
            self.state.buckets[bucket][name] = obj
        headers = {"etag": obj.etag, "opc-content-md5": md5}
        if sha:
            headers["opc-content-sha256"] = sha
        self._send(200, b"", headers)

    def _get_object(self, bucket: str, name: str, query: dict[str, str], body: bytes) -> None:
        obj = self.state.buckets[bucket].get(name)
        if obj is None:
            self._error(404, "ObjectNotFound", f"object {name} does not exist")
            return
        headers = {"etag": obj.etag, "content-length": str(len(obj.data))}
        headers["content-type"] = "application/octet-stream"
        for key, value in (
            ("opc-content-md5", obj.md5),
            ("opc-content-sha256", obj.sha256),
            ("opc-multipart-md5", obj.multipart_md5),
            ("opc-multipart-sha256", obj.multipart_sha256),
        ):
            if value:
                headers[key] = value
        self._send(200, obj.data, headers)

    def _delete_object(self, bucket: str, name: str, query: dict[str, str], body: bytes) -> None:
        with self.state.lock:
            if name in self.state.buckets[bucket] and self._protected(bucket, name, "deleted"):
                return
            self.state.buckets[bucket].pop(name)
        self._send(204)

    def _list_objects(self, bucket: str, name: str, query: dict[str, str], body: bytes) -> None:
        prefix, start = query.get("prefix", ""), query.get("start", "")
        limit = int(query.get("limit", "1000"))
        names = sorted(n for n in self.state.buckets[bucket] if n.startswith(prefix) and n >= start)
        page = names[:limit]
        objects = [{"name": n, "size": len(self.state.buckets[bucket][n].data)} for n in page]
        nxt = names[limit] if len(names) > limit else None
        self._json(200, {"objects": objects, "prefixes": [], "nextStartWith": nxt})

    # ------------------------------------------------------------------ multipart

    def _create_upload(self, bucket: str, name: str, query: dict[str, str], body: bytes) -> None:
        details = json.loads(body or b"{}")
        obj = details["object"]
        create_only = self.headers.get("if-none-match") == "*"
        if self._exists_conflict(bucket, obj, create_only):
            return
        upload_id = uuid.uuid4().hex
        algorithm = (self.headers.get("opc-checksum-algorithm") or "").upper() or None
        with self.state.lock:
            self.state.uploads[upload_id] = Upload(bucket, obj, create_only, algorithm)
        self._json(
            200,
            {
                "namespace": NAMESPACE,
                "bucket": bucket,
                "object": obj,
                "uploadId": upload_id,
                "timeCreated": _TIME,
            },
            {"location": f"/n/{NAMESPACE}/b/{bucket}/u/{obj}"},
        )

    def _upload_part(self, bucket: str, name: str, query: dict[str, str], body: bytes) -> None:
        upload = self.state.uploads.get(query.get("uploadId", ""))
        if upload is None or upload.name != name:
            self._error(404, "NoSuchUpload", "unknown upload id")
            return
        digests = self._check_digests(body)
        if digests is None:
            return
        md5, sha = digests
        etag = uuid.uuid4().hex
        sha_digest = hashlib.sha256(body).digest()
        with self.state.lock:
            upload.parts[int(query["uploadPartNum"])] = (body, etag, md5, _b64(sha_digest))
        headers = {"etag": etag, "opc-content-md5": md5}
        if sha:
            headers["opc-content-sha256"] = sha
        self._send(200, b"", headers)

    def _commit(self, bucket: str, name: str, query: dict[str, str], body: bytes) -> None:
        upload_id = query.get("uploadId", "")
        upload = self.state.uploads.get(upload_id)
        if upload is None or upload.name != name:
            self._error(404, "NoSuchUpload", "unknown upload id")
            return
        details = json.loads(body)
        chosen = sorted(details.get("partsToCommit") or [], key=lambda p: p["partNum"])
        with self.state.lock:
            if self._exists_conflict(bucket, name, upload.create_only):
                return
            parts = []
            for p in chosen:
                part = upload.parts.get(p["partNum"])
                if part is None or part[1] != p["etag"]:
                    self._error(400, "InvalidPart", f"part {p['partNum']} does not match")
                    return
                parts.append(part)
            md5s = b"".join(base64.b64decode(p[2]) for p in parts)
            shas = b"".join(base64.b64decode(p[3]) for p in parts)
            obj = StoredObject(
                b"".join(p[0] for p in parts),
                uuid.uuid4().hex,
                multipart_md5=f"{_b64(hashlib.md5(md5s).digest())}-{len(parts)}",  # noqa: S324
                multipart_sha256=(
                    f"{_b64(hashlib.sha256(shas).digest())}-{len(parts)}"
                    if upload.algorithm == "SHA256"
                    else None
                ),
            )
            self.state.buckets[bucket][name] = obj
            del self.state.uploads[upload_id]
        headers = {"etag": obj.etag, "opc-multipart-md5": obj.multipart_md5 or ""}
        self._send(200, b"", headers)

    def _abort(self, bucket: str, name: str, query: dict[str, str], body: bytes) -> None:
        with self.state.lock:
            self.state.uploads.pop(query.get("uploadId", ""), None)
        self._send(204)

    def _list_uploads(self, bucket: str, name: str, query: dict[str, str], body: bytes) -> None:
        items = [
            {
                "namespace": NAMESPACE,
                "bucket": u.bucket,
                "object": u.name,
                "uploadId": uid,
                "timeCreated": _TIME,
            }
            for uid, u in self.state.uploads.items()
            if u.bucket == bucket
        ]
        self._json(200, items)


def write_oci_config(directory: Path, profile: str = "DEFAULT") -> Path:
    """Write an OCI config file with a fresh RSA API key into ``directory``; return its path."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = directory / "oci_api_key.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashlib.md5(der).hexdigest()  # noqa: S324 - OCI key fingerprints are MD5
    fingerprint = ":".join(digest[i : i + 2] for i in range(0, 32, 2))
    config = directory / "config"
    config.write_text(
        f"[{profile}]\n"
        "user=ocid1.user.oc1..aaaatestuser\n"
        f"fingerprint={fingerprint}\n"
        "tenancy=ocid1.tenancy.oc1..aaaatesttenancy\n"
        "region=us-ashburn-1\n"
        f"key_file={key_file}\n",
        encoding="utf-8",
    )
    return config


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.harness.oci_server --port P --bucket B --config-dir D``: serve until
    SIGTERM (the demo's sealed mode runs it as a child), after writing an OCI config for it."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(prog="python -m tests.harness.oci_server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bucket", action="append", default=[])
    parser.add_argument("--config-dir", type=Path, required=True)
    args = parser.parse_args(argv)
    args.config_dir.mkdir(parents=True, exist_ok=True)
    write_oci_config(args.config_dir)  # before the port opens: a client may start at once
    server = OciTestServer()
    handler = type("Handler", (_Handler,), {"state": server})
    server._httpd = ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    server._httpd.daemon_threads = True
    for bucket in args.bucket:
        server.create_bucket(bucket)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.stop).start())
    server._httpd.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
