"""Kafka for the tests: see ``auditstream.embedded`` for Tansu and its deviations from Apache Kafka.

Which broker a test gets:
1. ``KAFKA_BOOTSTRAP_SERVERS`` set: that cluster (tests must use unique topic and group names).
2. ``--docker``: Apache Kafka through testcontainers.
3. Otherwise: Tansu as a subprocess (``auditstream.embedded.TansuBroker``).
Tests that need real Kafka behaviour are marked ``real_kafka`` and run only on a real cluster.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from auditstream.embedded import FAST_GROUP, TansuBroker, free_port, tansu_binary, wait_for_port

__all__ = ["FAST_GROUP", "ExternalKafka", "MotoS3", "TansuBroker", "durable_tansu", "tansu_binary"]


@dataclass
class ExternalKafka:
    """A cluster that someone else runs (``KAFKA_BOOTSTRAP_SERVERS`` or testcontainers)."""

    bootstrap: str
    is_real_kafka: bool = True

    def stop(self) -> None:
        """Not ours to stop."""


@dataclass
class MotoS3:
    """``moto_server`` on a free port: the S3 a durable Tansu keeps its data in."""

    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoS3:
        import shutil
        import sys

        exe = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
        self.proc = subprocess.Popen(
            [exe, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        proc = self.proc
        wait_for_port(
            "127.0.0.1", self.port, 30, what="moto_server", alive=lambda: proc.poll() is None
        )
        return self

    def create_bucket(self, name: str) -> None:
        import urllib.request

        req = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
        with urllib.request.urlopen(req, timeout=10):
            pass

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


def durable_tansu(s3: MotoS3, bucket: str) -> TansuBroker:
    """A Tansu whose data lives in moto's S3, so it survives ``restart()``."""
    s3.create_bucket(bucket)
    env = {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT": s3.endpoint,
        "AWS_ALLOW_HTTP": "true",
    }
    return TansuBroker(storage=f"s3://{bucket}/", env=env)
