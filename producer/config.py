"""The producer's settings: one audited server into one Kafka cluster.

Every field is a flag (``--source-dsn``) and an environment variable (``AUDITSTREAM_SOURCE_DSN``);
the names are a contract operators' scripts depend on. Passwords come from the environment or a
file, never from the command line (``ps`` shows it to every user).

Trap: build these only in ``producer.__main__`` (``auditstream.settings.load``); tests construct
``ProducerSettings(...)`` directly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator

from auditstream.connections import BookmarkDb, SourceDb
from auditstream.dsn import DsnText, MySQLDsn
from auditstream.errors import ConfigError
from auditstream.kafka import MAX_MESSAGE_BYTES, producer_config
from auditstream.kafkaauth import KafkaAuthSettings
from auditstream.signing import Signer, load_signer
from schemas.mapping import InvalidEventError, parse_timestamp

DEFAULT_PAGES_IN_FLIGHT = 3
MAX_PAGES_IN_FLIGHT = 16
#: librdkafka's local queue (``queue.buffering.max.kbytes``, default 1 GB): enough for the
#: pages in flight (a 4 MB page encodes to ~8 MB) and never below two of the largest messages.
QUEUE_KBYTES = 64 * 1024
MIN_READ_BUFFER = 32 * 1024
MAX_READ_BUFFER = 4 * 1024 * 1024
DEFAULT_DATABASE = "audit_archive"
_DATE = re.compile(r"\d{4}-\d\d-\d\d")


@dataclass(frozen=True)
class Options:
    """The loop's knobs (``ProducerSettings`` minus the connection details)."""

    topic: str = "mysql.audit.events"
    control_topic: str = "mysql.audit.control"
    start_from: str = "latest"
    start_timestamp: str | None = None
    batch_events: int | None = None
    #: 1 here (the library default) is one batch at a time; the command's default is 3.
    pages_in_flight: int = 1
    max_message_bytes: int = 16 * 1024 * 1024
    read_buffer_size: int = 4 * 1024 * 1024
    heartbeat_interval: float = 30.0
    idle_min: float = 0.2
    idle_max: float = 1.0
    backoff_max: float = 30.0
    ack_timeout: float = 120.0
    shutdown_timeout: float = 30.0
    once: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.pages_in_flight <= MAX_PAGES_IN_FLIGHT:
            raise ConfigError(
                f"pages_in_flight must be 1..{MAX_PAGES_IN_FLIGHT}", value=self.pages_in_flight
            )


class BookmarkSettings(SourceDb, BookmarkDb):
    """Where bookmarks live (``python -m producer setup`` needs only this)."""

    bookmark_dsn: DsnText | None = Field(
        None,
        description="bookmark store mysql://user@host:port[/db] (default: the source server, "
        "database audit_archive)",
    )
    log_json: bool = Field(False, description="log one JSON object per line")

    def source(self) -> MySQLDsn:
        """The audited server's DSN with its password filled in."""
        dsn = self.source_or_none()
        if dsn is None:
            raise ConfigError("--source-dsn is required")
        return dsn

    def bookmark(self) -> MySQLDsn:
        """The bookmark store's DSN; defaults to the source server (the predecessor's choice)."""
        dsn = self.bookmark_or_none()
        if dsn is None:
            if self.source_dsn is None:
                raise ConfigError("--bookmark-dsn (or --source-dsn) is required")
            return self.source().with_database(None)
        return dsn


class ProducerSettings(BookmarkSettings, KafkaAuthSettings):
    """Everything ``python -m producer`` reads."""

    source_dsn: DsnText | None = Field(
        None, description="the audited server: mysql://user[:pass]@host:port (required)"
    )
    bootstrap_servers: str = Field("localhost:9092", description="Kafka bootstrap servers")
    topic: str = Field("mysql.audit.events", description="topic for audit events")
    control_topic: str = Field("mysql.audit.control", description="topic for gaps, heartbeats")
    schema_registry_url: str | None = Field(
        None, description="Confluent framing through this registry (default: single-object)"
    )
    start_from: str = Field(
        "latest",
        description="with no stored bookmark: latest | earliest | 'YYYY-MM-DD[ hh:mm:ss]' (UTC)",
    )
    allow_self_audit: bool = Field(
        False, description="start even when the archiver's own statements are audited"
    )
    kafka_config: dict[str, str] = Field(
        default_factory=dict, description="librdkafka pass-through, key=value (repeatable)"
    )
    read_buffer_size: int = Field(
        MAX_READ_BUFFER, ge=MIN_READ_BUFFER, le=MAX_READ_BUFFER, description="bytes per read"
    )
    source_read_timeout: int = Field(
        60,
        ge=1,
        le=3600,
        description="seconds without a byte from the source before a read is abandoned and the "
        "session reconnected (above the slowest honest 4 MB page)",
    )
    batch_events: int | None = Field(
        None, ge=1, description="events per acknowledged batch (default: one page)"
    )
    pages_in_flight: int = Field(
        DEFAULT_PAGES_IN_FLIGHT,
        ge=1,
        le=MAX_PAGES_IN_FLIGHT,
        description="batches (pages, or --batch-events events) sent and not yet acknowledged; "
        "a crash re-sends at most these (1 = wait for each batch's acks before reading on)",
    )
    partitions: int = Field(6, ge=1, description="partitions of topics the producer creates")
    max_message_bytes: int = Field(
        MAX_MESSAGE_BYTES, ge=1024, description="largest message; larger events become gaps"
    )
    heartbeat_interval: float = Field(30.0, gt=0, description="seconds between heartbeats")
    idle_min: float = Field(0.2, gt=0, description="first idle wait at the end of the log (s)")
    idle_max: float = Field(1.0, gt=0, description="longest idle wait at the end of the log (s)")
    backoff_max: float = Field(30.0, gt=0, description="longest wait between reconnects (s)")
    shutdown_timeout: float = Field(30.0, gt=0, description="SIGTERM: seconds to wait for acks")
    once: bool = Field(False, description="drain to the end of the log, then exit")
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="serve /metrics, /healthz, /readyz on this port"
    )
    seal_every_events: int | None = Field(
        None, ge=1, description="sign a chain checkpoint after this many links (off by default)"
    )
    seal_every_seconds: float | None = Field(
        None, gt=0, description="sign a chain checkpoint after this many seconds of new links"
    )
    seal_key: SecretStr | None = Field(
        None, description="AUDITSTREAM_SEAL_KEY: the Ed25519 private key (PEM text)"
    )
    seal_key_file: Path | None = Field(None, description="file holding the seal key (mode 0600)")

    @field_validator("start_from")
    @classmethod
    def _start_from(cls, value: str) -> str:
        if value in ("latest", "earliest"):
            return value
        text = value.strip()
        try:
            parse_timestamp(text + " 00:00:00" if _DATE.fullmatch(text) else text)
        except InvalidEventError:
            raise ValueError(
                "must be latest, earliest or a UTC time 'YYYY-MM-DD[ hh:mm:ss]'"
            ) from None
        return text

    @model_validator(mode="after")
    def _contradictions(self) -> ProducerSettings:
        if self.source_dsn is None:
            raise ValueError("--source-dsn is required (AUDITSTREAM_SOURCE_DSN)")
        if self.idle_min > self.idle_max:
            raise ValueError("--idle-min must not exceed --idle-max")
        if self.topic == self.control_topic:
            raise ValueError("--topic and --control-topic must differ")
        sealing = self.seal_every_events is not None or self.seal_every_seconds is not None
        if sealing != (self.seal_key is not None or self.seal_key_file is not None):
            raise ValueError(
                "sealing needs both a schedule (--seal-every-events / --seal-every-seconds) "
                "and a key (AUDITSTREAM_SEAL_KEY or --seal-key-file)"
            )
        queue = self.kafka()["queue.buffering.max.kbytes"]
        if int(queue) * 1024 < self.max_message_bytes:
            # produce() would refuse the largest message forever (BufferError, retried).
            raise ValueError(
                f"queue.buffering.max.kbytes ({queue}) must hold one message of "
                f"--max-message-bytes ({self.max_message_bytes} bytes)"
            )
        return self

    def start_timestamp(self) -> str | None:
        """``--start-from`` as the server's timestamp text, or None for latest/earliest."""
        if self.start_from in ("latest", "earliest"):
            return None
        text = self.start_from
        return text + " 00:00:00" if _DATE.fullmatch(text) else text

    def kafka(self) -> dict[str, Any]:
        """Librdkafka producer settings; the guarantees (acks=all, idempotence) always win."""
        return producer_config(
            self.bootstrap_servers,
            {**self.kafka_config, **self.kafka_auth()},
            message_max_bytes=self.max_message_bytes,
            message_timeout_ms=120_000,
            queue_buffering_max_kbytes=max(QUEUE_KBYTES, 2 * self.max_message_bytes // 1024),
        )

    def options(self) -> Options:
        """The loop's knobs."""
        return Options(
            topic=self.topic,
            control_topic=self.control_topic,
            start_from=self.start_from,
            start_timestamp=self.start_timestamp(),
            batch_events=self.batch_events,
            pages_in_flight=self.pages_in_flight,
            max_message_bytes=self.max_message_bytes,
            read_buffer_size=self.read_buffer_size,
            heartbeat_interval=self.heartbeat_interval,
            idle_min=self.idle_min,
            idle_max=self.idle_max,
            backoff_max=self.backoff_max,
            shutdown_timeout=self.shutdown_timeout,
            once=self.once,
        )

    def signer(self) -> Signer | None:
        """The checkpoint signing key, or None when sealing is off.

        Raises:
            ConfigError: the key cannot be read or is not an Ed25519 private key.
        """
        return load_signer(self.seal_key, self.seal_key_file)

    def admin(self) -> dict[str, Any]:
        """Settings for the admin client that creates the topics (security keys pass through)."""
        return self.admin_config(self.bootstrap_servers, self.kafka_config)
