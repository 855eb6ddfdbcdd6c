"""Settings of ``auditstream verify``: which stores to read, which servers and range.

Every store configured is verified: the topics (``--bootstrap-servers``), the archive tables
(``--archive-dsn``) and the dumps of a target (``--target file:///dir`` or ``oci://bucket/prefix``,
with the consumer's ``--oci-*`` settings). The archive password comes from
``AUDITSTREAM_ARCHIVE_PASSWORD`` or a file, never the command line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from auditstream.connections import ArchiveDb
from auditstream.dsn import DsnText, MySQLDsn
from auditstream.errors import ConfigError
from auditstream.kafkaauth import KafkaAuthSettings
from auditstream.position import Position, parse_position
from consumer.config import OciSettings
from consumer.targets import TargetText


class VerifySettings(ArchiveDb, OciSettings, KafkaAuthSettings):
    """Everything ``auditstream verify`` reads."""

    server_uuid: list[str] = Field([], description="verify only these servers (default: all)")
    since: str | None = Field(None, description="first bookmark 'YYYY-MM-DD hh:mm:ss[#id]'")
    until: str | None = Field(None, description="last bookmark 'YYYY-MM-DD hh:mm:ss[#id]'")
    bootstrap_servers: str | None = Field(None, description="verify the topics of this cluster")
    topic: str = Field("mysql.audit.events", description="topic of audit events")
    control_topic: str = Field("mysql.audit.control", description="topic of gaps (links too)")
    dlq_topic: str | None = Field("mysql.audit.dlq", description="dead-letter topic")
    kafka_config: dict[str, str] = Field({}, description="librdkafka pass-through (security)")
    schema_registry_url: str | None = Field(None, description="for Confluent-framed topics")
    archive_dsn: DsnText | None = Field(None, description="verify this archive database")
    target: TargetText | None = Field(
        None, description="verify the dumps under file:///dir or oci://"
    )
    seal_public_key: list[str] = Field(
        [], description="trusted checkpoint key: a PEM file or 64 hex digits (repeatable)"
    )
    seal_target: TargetText | None = Field(
        None, description="the checkpoints' bucket/prefix (oci://...) or file:///dir"
    )
    require_seal: bool = Field(
        False, description="a server's chain without a valid signed checkpoint is tampering"
    )
    anchor: Path | None = Field(None, description="anchor file: the latest link per server")
    write_anchor: Path | None = Field(None, description="after an intact run, write the anchor")
    idle_timeout: float = Field(30.0, gt=0, description="seconds without a message: broker down")
    log_json: bool = Field(False, description="log one JSON object per line")

    _bookmark = field_validator("since", "until")(ConfigError.checked(parse_position))

    @model_validator(mode="after")
    def _some_store(self) -> VerifySettings:
        if not (self.bootstrap_servers or self.archive_dsn or self.target):
            raise ValueError("give at least one of --bootstrap-servers, --archive-dsn, --target")
        return self

    def range(self) -> tuple[Position | None, Position | None]:
        """``(since, until)`` as positions."""
        since = parse_position(self.since) if self.since else None
        until = parse_position(self.until, upper=True) if self.until else None
        return since, until

    def archive(self) -> MySQLDsn | None:
        """The archive DSN with its password, or None."""
        return self.archive_or_none()

    def kafka(self) -> dict[str, Any] | None:
        """Librdkafka consumer settings, or None without a cluster."""
        if self.bootstrap_servers is None:
            return None
        return {
            **self.kafka_config,
            **self.kafka_auth(),
            "bootstrap.servers": self.bootstrap_servers,
        }
