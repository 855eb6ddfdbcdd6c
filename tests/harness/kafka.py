"""Kafka for the tests: see ``auditstream.embedded`` for Tansu and its deviations from Apache Kafka.

Which broker a test session gets (one for the whole session; tests use their own topics and
groups):

1. ``KAFKA_BOOTSTRAP_SERVERS`` set: that cluster (tests must use unique topic and group names).
2. ``--docker``: the official ``apache/kafka`` image through testcontainers.
3. ``--broker kafka``, or no ``--broker`` and ``make install`` fetched Apache Kafka: a KRaft node
   as a subprocess (``auditstream.embedded_kafka.KafkaBroker``).
4. ``--broker tansu``, or Apache Kafka not installed outside CI: Tansu as a subprocess
   (``auditstream.embedded.TansuBroker``); the ``real_kafka`` tests are skipped. In CI
   (``CI=true``) a missing Apache Kafka is a usage error, never a silent fallback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import pytest

from auditstream.embedded import FAST_GROUP, TansuBroker, tansu_binary
from auditstream.embedded_kafka import KafkaBroker, kafka_missing
from auditstream.ports import free_port
from auditstream.process import LocalServer, start_listening

__all__ = [
    "FAST_GROUP",
    "Broker",
    "ExternalKafka",
    "KafkaBroker",
    "MotoS3",
    "TansuBroker",
    "chosen_broker",
    "durable_tansu",
    "start_broker",
    "tansu_binary",
]

#: The official image ``--docker`` runs (keep its version beside ``.ci/kafka/pom.xml``'s).
APACHE_KAFKA_IMAGE = "apache/kafka:4.3.2"


@dataclass
class ExternalKafka:
    """A cluster that someone else runs (``KAFKA_BOOTSTRAP_SERVERS`` or testcontainers)."""

    bootstrap: str
    is_real_kafka: bool = True

    def stop(self) -> None:
        """Not ours to stop."""


Broker = TansuBroker | KafkaBroker | ExternalKafka


def chosen_broker(config: pytest.Config) -> str:
    """``external``, ``docker``, ``kafka`` or ``tansu``, by the order in the module docstring.

    Raises:
        pytest.UsageError: Apache Kafka was asked for (or CI runs) and it is not installed.
    """
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return "external"
    if config.getoption("--docker"):
        return "docker"
    asked: str | None = config.getoption("--broker")
    if asked == "tansu":
        return "tansu"
    missing = kafka_missing()
    if missing is None:
        return "kafka"
    if asked == "kafka" or os.environ.get("CI") == "true":
        raise pytest.UsageError(f"Apache Kafka is needed here and cannot run: {missing}")
    return "tansu"


def broker_header(config: pytest.Config) -> str:
    """One line for pytest's header: which broker this session runs on, and why."""
    which = chosen_broker(config)
    if which == "tansu" and config.getoption("--broker") != "tansu":
        return f"broker: tansu (Apache Kafka cannot run: {kafka_missing()}; real_kafka skipped)"
    return f"broker: {which}"


@contextmanager
def start_broker(config: pytest.Config) -> Iterator[Broker]:
    """Start the session's broker (or name the given one) and stop it afterwards."""
    which = chosen_broker(config)
    if which == "external":
        yield ExternalKafka(os.environ["KAFKA_BOOTSTRAP_SERVERS"])
    elif which == "docker":
        yield from _docker_kafka()
    elif which == "kafka":
        with KafkaBroker().start() as broker:
            yield broker
    else:
        with TansuBroker().start() as tansu:
            yield tansu


def _docker_kafka() -> Iterator[ExternalKafka]:
    """The official image, single-node KRaft, its client port published on a free host port."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.waiting_utils import wait_for_logs

    port = free_port()
    # Any KAFKA_* variable replaces the image's default configuration: give all of it.
    env = {
        "NODE_ID": "1",
        "PROCESS_ROLES": "broker,controller",
        "CONTROLLER_QUORUM_VOTERS": "1@localhost:9093",
        "CONTROLLER_LISTENER_NAMES": "CONTROLLER",
        "LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
        "ADVERTISED_LISTENERS": f"PLAINTEXT://127.0.0.1:{port}",
        "LISTENER_SECURITY_PROTOCOL_MAP": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
        "TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
        "TRANSACTION_STATE_LOG_MIN_ISR": "1",
        "SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR": "1",
        "SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR": "1",
        "GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
        "GROUP_MIN_SESSION_TIMEOUT_MS": "1000",
        "MESSAGE_MAX_BYTES": str(17 * 1024 * 1024),
    }
    container = DockerContainer(APACHE_KAFKA_IMAGE).with_bind_ports(9092, port)
    for key, value in env.items():
        container = container.with_env(f"KAFKA_{key}", value)
    with container:
        wait_for_logs(container, "Kafka Server started", timeout=120)
        yield ExternalKafka(f"127.0.0.1:{port}")


@dataclass
class MotoS3(LocalServer):
    """``moto_server`` on a free port: the S3 a durable Tansu keeps its data in."""

    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    stop_timeout: ClassVar[float] = 10.0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> MotoS3:
        exe = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
        argv = [exe, "-H", "127.0.0.1", "-p", str(self.port)]
        self.proc = start_listening(argv, None, self.port, what="moto_server", timeout=timeout)
        return self

    def create_bucket(self, name: str) -> None:
        import urllib.request

        req = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
        with urllib.request.urlopen(req, timeout=10):
            pass


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
