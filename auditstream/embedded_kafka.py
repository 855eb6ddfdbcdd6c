"""Apache Kafka as a child process: one KRaft node (broker + controller) on loopback ports.

The jars come from ``make install`` (``.ci/kafka/pom.xml`` copied into ``.cache/kafka/libs``);
nothing is downloaded here. ``KAFKA_LIBS_DIR`` points at another copy (not an ``AUDITSTREAM_*``
name: the tests clear those for every test).

Start-up, in order:

1. Pick free ports (client, controller, and the ``SASL_SSL`` one when users or TLS are given).
2. Write ``server.properties`` for one node in a private temp dir (settings below).
3. Format the storage once (``kafka.tools.StorageTool format``), creating SCRAM users there:
   KRaft cannot create them before the first controller runs any other way.
4. ``java -cp 'libs/*' kafka.Kafka server.properties``, stdout and stderr into ``broker.log``.
5. Ready when a metadata request on the plain listener answers with this broker in it.

Traps:
- The broker's group minimum session timeout is lowered to 1 s; without it the clients'
  ``FAST_GROUP`` (2 s) is refused with ``INVALID_SESSION_TIMEOUT``.
- ``group.initial.rebalance.delay.ms=0``: the default 3 s delay only helps groups of many
  members joining at once; a single node serving tests pays it on every new group.
- ``restart()`` keeps the data dir (and the ports): a crashed broker comes back with its log.
- Start-up takes 10-30 s on two busy cores (two JVMs: the format tool, then the server), so
  tests share one per session and use their own topics and groups.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from auditstream.kafka import MAX_MESSAGE_BYTES
from auditstream.ports import free_port
from auditstream.process import LocalServer, log_lines, read_log, run_logged, start_listening

#: Where ``make install`` puts the jars (relative to the checkout).
DEFAULT_LIBS = Path(__file__).resolve().parent.parent / ".cache" / "kafka" / "libs"

SCRAM_MECHANISM = "SCRAM-SHA-512"


def kafka_libs() -> Path:
    """The folder holding Apache Kafka's jars (``KAFKA_LIBS_DIR`` or the install's)."""
    return Path(os.environ.get("KAFKA_LIBS_DIR") or DEFAULT_LIBS)


def kafka_missing() -> str | None:
    """Why Apache Kafka cannot run here, or ``None`` when it can."""
    if shutil.which("java") is None:
        return "java is not installed"
    libs = kafka_libs()
    if not any(libs.glob("kafka_2.13-*.jar")):
        return f"no Apache Kafka jars in {libs} (run `make install` with java and mvn present)"
    return None


@dataclass(frozen=True)
class BrokerTls:
    """PEM files for the broker's ``SASL_SSL`` listener (the key unencrypted, PKCS#8)."""

    ca: Path
    cert_and_key: Path


@dataclass
class KafkaBroker(LocalServer):
    """One Apache Kafka KRaft node; ``kill()`` is a crash, ``restart()`` keeps the data.

    ``stop()`` is a controlled shutdown (SIGTERM), SIGKILL after 30 s; a restart keeps the ports.
    """

    scram_users: Mapping[str, str] = field(default_factory=dict)
    tls: BrokerTls | None = None
    heap_mb: int = 512
    port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)
    sasl_port: int = field(default_factory=free_port)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="kafka-")))
    #: KRaft's cluster id: 16 random bytes, URL-safe base64 (so it may start with "-").
    cluster_id: str = field(
        default_factory=lambda: base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
    )
    proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """The plain listener, ``host:port`` for ``bootstrap.servers``."""
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_bootstrap(self) -> str:
        """The ``SASL_SSL`` listener (only with ``tls`` set)."""
        return f"localhost:{self.sasl_port}"

    @property
    def is_real_kafka(self) -> bool:
        """This is Apache Kafka."""
        return True

    @property
    def _datadir(self) -> Path:
        return self.workdir / "data"

    def _properties(self) -> str:
        listeners = [
            f"PLAINTEXT://127.0.0.1:{self.port}",
            f"CONTROLLER://127.0.0.1:{self.controller_port}",
        ]
        advertised = [f"PLAINTEXT://127.0.0.1:{self.port}"]
        protocols = ["PLAINTEXT:PLAINTEXT", "CONTROLLER:PLAINTEXT"]
        extra: list[str] = []
        if self.tls is not None:
            # "localhost" so the certificate's DNS name matches what clients dial.
            listeners.append(f"SASL_SSL://localhost:{self.sasl_port}")
            advertised.append(f"SASL_SSL://localhost:{self.sasl_port}")
            protocols.append("SASL_SSL:SASL_SSL")
            extra += [
                f"sasl.enabled.mechanisms={SCRAM_MECHANISM}",
                "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
                "ssl.keystore.type=PEM",
                f"ssl.keystore.location={self.tls.cert_and_key}",
                "ssl.truststore.type=PEM",
                f"ssl.truststore.location={self.tls.ca}",
            ]
        lines = [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
            f"listeners={','.join(listeners)}",
            f"advertised.listeners={','.join(advertised)}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            f"listener.security.protocol.map={','.join(protocols)}",
            f"log.dirs={self._datadir}",
            # One node: every internal topic has one replica and few partitions.
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=4",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "group.min.session.timeout.ms=1000",
            # A 4 MB event, its flat copies and Avro framing, plus the batch around it.
            f"message.max.bytes={MAX_MESSAGE_BYTES + 1024 * 1024}",
            f"replica.fetch.max.bytes={MAX_MESSAGE_BYTES + 1024 * 1024}",
            # Two shared cores: few threads, a small log-cleaner buffer.
            "num.network.threads=2",
            "num.io.threads=2",
            "background.threads=2",
            "num.recovery.threads.per.data.dir=1",
            "log.cleaner.threads=1",
            "log.cleaner.dedupe.buffer.size=16777216",
            *extra,
        ]
        return "\n".join(lines) + "\n"

    def _java(self, main: str, *args: str, heap_mb: int) -> list[str]:
        java = shutil.which("java") or "java"
        return [
            java,
            f"-Xms{min(heap_mb, 128)}m",
            f"-Xmx{heap_mb}m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
            "-cp",
            f"{kafka_libs()}/*",
            main,
            *args,
        ]

    def _format(self) -> None:
        """Steps 2-3: configuration files and formatted storage with the SCRAM users."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "server.properties").write_text(self._properties())
        (self.workdir / "log4j2.properties").write_text(
            "rootLogger.level=INFO\n"
            "rootLogger.appenderRef.out.ref=out\n"
            "appender.out.type=Console\n"
            "appender.out.name=out\n"
            "appender.out.layout.type=PatternLayout\n"
            "appender.out.layout.pattern=[%d] %p %m (%c)%n\n"
            "logger.kafka.name=org.apache.kafka\nlogger.kafka.level=WARN\n"
        )
        # "--cluster-id=ID", never "-t ID": one id in 64 starts with "-" and argparse then takes
        # it for a flag ("expected one argument"), so the broker failed to start at random.
        args = [
            "format",
            f"--cluster-id={self.cluster_id}",
            "-c",
            str(self.workdir / "server.properties"),
        ]
        for user, password in self.scram_users.items():
            args += ["--add-scram", f"{SCRAM_MECHANISM}=[name={user},password={password}]"]
        java = self._java("kafka.tools.StorageTool", *args, heap_mb=256)
        if run_logged(java, self.workdir / "broker.log") != 0:
            raise RuntimeError(f"formatting Kafka storage failed:\n{self.log_tail()}")

    def start(self, timeout: float = 120.0) -> KafkaBroker:
        """Steps 1-5: format on first start, run the node, wait for a metadata answer."""
        missing = kafka_missing()
        if missing:
            raise FileNotFoundError(f"cannot run Apache Kafka: {missing}")
        if not self._datadir.exists():
            self._format()
        java = self._java(
            "kafka.Kafka", str(self.workdir / "server.properties"), heap_mb=self.heap_mb
        )
        self.proc = start_listening(
            java,
            self.workdir / "broker.log",
            self.port,
            what="kafka",
            timeout=timeout,
            cwd=self.workdir,
            ready=self._wait_for_metadata,
        )
        return self

    def _wait_for_metadata(self, proc: subprocess.Popen[bytes], deadline: float) -> None:
        """Step 5: this broker answers a metadata request (``start_listening``'s readiness)."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"kafka exited with status {proc.returncode} while starting")
            try:
                if 1 in admin.list_topics(timeout=2).brokers:
                    return
            except Exception:  # noqa: BLE001 - not answering yet is what we wait out
                time.sleep(0.2)
                continue
        raise TimeoutError(f"kafka on {self.bootstrap} answered no metadata request in time")

    def cleanup(self) -> None:
        """Stop and delete the data."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log(self) -> str:
        """The broker's output so far (for failure messages)."""
        return read_log(self.workdir / "broker.log")

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the broker's output."""
        return log_lines(self.workdir / "broker.log", lines)
