"""The one adapter around the ``oci`` SDK: an ``ObjectStore`` on OCI Object Storage.

* Auth: an OCI config file profile, instance principals or resource principals.
* Writes: ``UploadManager.upload_file`` (one PUT up to ``part_size``), else a multipart upload
  with parallel parts through UploadManager's ``MultipartObjectAssembler``; always
  ``if-none-match: *`` (create-only) and ``opc-checksum-algorithm: SHA256``. For single-part
  objects the manifest's SHA-256 is sent as ``opc-content-sha256``: the service rejects a body
  that differs, and the SDK does not read the whole file into memory to compute it.
* Verification (``targets.verify``) uses ``stat``: the service's ``opc-content-sha256`` when it
  kept one (single-part); for multipart objects its ``opc-multipart-sha256`` (a checksum of the
  part checksums) against the staged file; otherwise the object is read back and hashed.

Traps: ``upload_file`` leaves a failed multipart upload behind (its parts cost storage), so every
upload first aborts this object's unfinished uploads. A 412 means the name is taken: that is
not an error here; the caller verifies what is there.
"""

from __future__ import annotations

import base64
import copy
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import oci
from circuitbreaker import CircuitBreakerError  # type: ignore[import-untyped]  # untyped oci dep
from oci._vendor.requests.exceptions import RequestException
from oci.exceptions import ClientError, MultipartUploadError, ServiceError
from oci.object_storage.transfer.internal.multipart_object_assembler import (
    MultipartObjectAssembler,
)
from oci.object_storage.transfer.upload_manager import UploadManager

from auditstream.errors import ChecksumMismatch, ConfigError, ObjectStoreError
from consumer.dumpformat import DumpObject
from consumer.targets import ObjectInfo, TargetUrl

log = logging.getLogger(__name__)

MIB = 1 << 20
Auth = Literal["config", "instance_principal", "resource_principal"]


@dataclass(frozen=True)
class OciOptions:
    """How to reach OCI Object Storage.

    ``endpoint`` overrides the region's service endpoint (tests, private endpoints). The retry
    fields shape the SDK's retry strategy for every call (exponential backoff, full jitter).
    The SDK's circuit breaker (on by default) fails calls fast for 30 s after a burst of
    failures; those failures are retriable ``ObjectStoreError``s like any other.
    """

    auth: Auth = "config"
    config_file: Path | None = None
    profile: str = "DEFAULT"
    endpoint: str | None = None
    part_size: int = 128 * MIB
    parallel: int = 3
    retry_attempts: int = 8
    retry_base_seconds: float = 1.0
    retry_max_wait_seconds: float = 30.0
    circuit_breaker: bool = True


def make_client(options: OciOptions) -> Any:
    """An ``ObjectStorageClient`` authenticated as ``options.auth`` says.

    Raises:
        ConfigError: the config file or profile is missing or invalid.
    """
    retry = oci.retry.RetryStrategyBuilder(
        max_attempts=options.retry_attempts,
        total_elapsed_time_check=False,
        retry_base_sleep_time_seconds=options.retry_base_seconds,
        retry_max_wait_between_calls_seconds=options.retry_max_wait_seconds,
        backoff_type=oci.retry.BACKOFF_FULL_JITTER_VALUE,
    ).get_retry_strategy()
    kwargs: dict[str, Any] = {"retry_strategy": retry}
    if not options.circuit_breaker:
        kwargs["circuit_breaker_strategy"] = oci.circuit_breaker.NoCircuitBreakerStrategy()
    if options.endpoint:
        kwargs["service_endpoint"] = options.endpoint
    try:
        if options.auth == "config":
            path = str(options.config_file or oci.config.DEFAULT_LOCATION)
            config = oci.config.from_file(path, options.profile)
            return oci.object_storage.ObjectStorageClient(config, **kwargs)
        if options.auth == "instance_principal":
            signer = oci.auth.signers.InstancePrincipalsSecurityTokenSigner()
        else:
            signer = oci.auth.signers.get_resource_principals_signer()
        return oci.object_storage.ObjectStorageClient(
            {"region": signer.region}, signer=signer, **kwargs
        )
    except (ClientError, OSError) as exc:
        raise ConfigError(f"OCI configuration: {exc}", profile=options.profile) from exc
    except RequestException as exc:  # principals: the metadata or token service is unreachable
        raise ObjectStoreError(f"OCI authentication failed: {exc}", auth=options.auth) from exc


class OciStore:
    """An ``ObjectStore`` on a bucket; object names are used as given.

    Args:
        target: the parsed ``oci://`` target (bucket, optional namespace).
        options: auth, endpoint, part size, parallelism, retries.
        client: an ``ObjectStorageClient`` to use instead of building one.
    """

    def __init__(self, target: TargetUrl, options: OciOptions, client: Any = None) -> None:
        self.target = target
        self.options = options
        self.client = client if client is not None else make_client(options)
        self._namespace = target.namespace
        self._bare_client = copy.copy(self.client)
        self._bare_client.retry_strategy = oci.retry.NoneRetryStrategy()

    @property
    def namespace(self) -> str:
        """The namespace: from the target, or looked up once (``GET /n/``)."""
        if self._namespace is None:
            self._namespace = str(self._call("get_namespace", "namespace lookup").data)
        return self._namespace

    def put_file(self, name: str, path: Path, obj: DumpObject) -> bool:
        """Upload ``path`` as ``name`` create-only; False if ``name`` already existed."""
        self._abort_unfinished(name)
        try:
            if obj.size <= self.options.part_size:
                self._put_single(name, path, obj)
            else:
                self._put_multipart(name, path)
        except ServiceError as exc:
            if exc.status == 412:
                return False
            if exc.status == 409 and self.stat(name) is not None:
                # the name is taken by an object a retention rule protects: like 412, the
                # caller compares what is there (a create-only retry must not loop on it)
                return False
            if exc.status == 400 and "SHA256" in str(exc.code).upper():
                raise ChecksumMismatch(
                    "the service rejected the body: the staged file differs from the manifest",
                    object=name,
                ) from exc
            self._abort_unfinished(name, quiet=True)
            raise _store_error("upload", name, exc) from exc
        except (
            MultipartUploadError,
            RequestException,
            ClientError,
            CircuitBreakerError,
            OSError,
        ) as exc:
            self._abort_unfinished(name, quiet=True)
            raise _store_error("upload", name, exc) from exc
        return True

    def _put_single(self, name: str, path: Path, obj: DumpObject) -> None:
        manager = UploadManager(self.client, allow_multipart_uploads=False)
        manager.upload_file(
            self.namespace,
            self.target.bucket,
            name,
            str(path),
            if_none_match="*",
            opc_checksum_algorithm="SHA256",
            opc_content_sha256=base64.b64encode(bytes.fromhex(obj.sha256)).decode(),
            content_type="application/octet-stream",
        )

    def _put_multipart(self, name: str, path: Path) -> None:
        # UploadManager.upload_file's own multipart path retries a part through the client's
        # retry strategy, which rewinds the SDK's BufferedPartReader without resetting its byte
        # count: the retried part is sent truncated and hangs until the read timeout. So we
        # drive UploadManager's assembler here, on a client without retries, and retry whole
        # part calls (each with a fresh reader) with our strategy.
        retry = self.client.retry_strategy
        assembler = MultipartObjectAssembler(
            self._bare_client,
            self.namespace,
            self.target.bucket,
            name,
            part_size=self.options.part_size,
            parallel_process_count=self.options.parallel,
            if_none_match="*",
            opc_checksum_algorithm="SHA256",
            content_type="application/octet-stream",
        )
        retry.make_retrying_call(assembler.new_upload)
        assembler.add_parts_from_file(str(path))
        # assembler.upload() would leak its thread pool when a part fails; same calls, our pool.
        parts = list(enumerate(assembler.manifest["parts"], start=1))
        with ThreadPoolExecutor(self.options.parallel, thread_name_prefix="oci-part") as pool:
            futures = [
                pool.submit(assembler._upload_part, num, part, retry_strategy=retry)
                for num, part in parts
            ]
            for future in futures:
                future.result()
        assembler.commit(retry_strategy=retry)

    def stat(self, name: str) -> ObjectInfo | None:
        """Size and the service's SHA-256 (single-part objects) of ``name``; None if absent."""
        try:
            resp = self.client.head_object(self.namespace, self.target.bucket, name)
        except ServiceError as exc:
            if exc.status == 404:
                return None
            raise _store_error("head", name, exc) from exc
        except (RequestException, CircuitBreakerError) as exc:
            raise _store_error("head", name, exc) from exc
        sha = resp.headers.get("opc-content-sha256")
        return ObjectInfo(
            size=int(resp.headers["content-length"]),
            sha256=base64.b64decode(sha).hex() if sha else None,
            multipart_sha256=resp.headers.get("opc-multipart-sha256"),
            part_size=self.options.part_size,
        )

    def read(self, name: str) -> Iterator[bytes]:
        """The object's bytes, streamed 1 MiB at a time."""
        try:
            resp = self.client.get_object(self.namespace, self.target.bucket, name)
            yield from resp.data.raw.stream(MIB, decode_content=False)
        except (ServiceError, RequestException, CircuitBreakerError) as exc:
            raise _store_error("download", name, exc) from exc

    def list(self, prefix: str) -> list[str]:
        """Names of the objects under ``prefix`` (all pages)."""
        names: list[str] = []
        start = None
        try:
            while True:
                kwargs: dict[str, Any] = {"prefix": prefix}
                if start:
                    kwargs["start"] = start
                page = self.client.list_objects(self.namespace, self.target.bucket, **kwargs).data
                names += [o.name for o in page.objects]
                start = page.next_start_with
                if not start:
                    return sorted(names)
        except (ServiceError, RequestException, CircuitBreakerError) as exc:
            raise _store_error("list", prefix, exc) from exc

    def _abort_unfinished(self, name: str, *, quiet: bool = False) -> None:
        try:
            for upload in self._uploads():
                if upload.object == name:
                    self.client.abort_multipart_upload(
                        self.namespace, self.target.bucket, name, upload.upload_id
                    )
                    log.info("aborted an unfinished upload", extra={"ctx": {"object": name}})
        except (ServiceError, RequestException, CircuitBreakerError) as exc:
            if not quiet:
                raise _store_error("abort unfinished uploads", name, exc) from exc

    def _uploads(self) -> Iterator[Any]:
        # Not oci.pagination: it wraps every page in DEFAULT_RETRY_STRATEGY on top of the
        # client's own retries (up to 8 x 8 attempts with 30 s waits in a 503 storm).
        page = None
        while True:
            kwargs: dict[str, Any] = {"page": page} if page else {}
            resp = self.client.list_multipart_uploads(self.namespace, self.target.bucket, **kwargs)
            yield from resp.data
            page = resp.headers.get("opc-next-page")
            if not page:
                return

    def _call(self, method: str, what: str) -> Any:
        try:
            return getattr(self.client, method)()
        except (ServiceError, RequestException, CircuitBreakerError) as exc:
            raise _store_error(what, self.target.bucket, exc) from exc


def _store_error(what: str, name: str, exc: BaseException) -> ObjectStoreError:
    if isinstance(exc, ServiceError):
        return ObjectStoreError(
            f"{what} failed: {exc.status} {exc.code}: {exc.message}", object=name
        )
    if isinstance(exc, MultipartUploadError):
        causes = "; ".join(str(c) for c in exc.error_causes) or "unknown"
        return ObjectStoreError(f"{what} failed (multipart): {causes}", object=name)
    return ObjectStoreError(f"{what} failed: {exc}", object=name)
