"""``auditstream reconcile`` settings: the range, and where each store is (leave out the rest).

Every field is a flag (``--archive-dsn``) and an environment variable
(``AUDITSTREAM_ARCHIVE_DSN``), with the same names as the producer's and the consumer's, so one
environment serves all three. Passwords come from the environment or a file, never from flags.

Trap: build these only in ``ops.reconcile.command`` (``auditstream.settings.load``);
tests construct ``ReconcileSettings(...)`` directly or call ``reconcile()``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from auditstream.connections import ArchiveDb, SourceDb, in_archive_database
from auditstream.dsn import DsnText, MySQLDsn
from auditstream.errors import ConfigError
from auditstream.kafkaauth import KafkaAuthSettings
from auditstream.position import parse_position
from consumer.config import OciSettings
from consumer.targets import TargetText
from ops.reconcile.keys import KeyRange


class ReconcileSettings(SourceDb, ArchiveDb, OciSettings, KafkaAuthSettings):
    """Everything ``auditstream reconcile`` reads."""

    server_uuid: str | None = Field(None, description="only this server (default: the source's)")
    start: str | None = Field(
        None, description="first bookmark 'YYYY-MM-DD[ hh:mm:ss][#id]' UTC (default: beginning)"
    )
    end: str | None = Field(
        None, description="last bookmark, inclusive (default: the source's newest event)"
    )
    source_dsn: DsnText | None = Field(None, description="the audited server (AUDIT_ADMIN account)")
    bootstrap_servers: str | None = Field(None, description="Kafka bootstrap servers")
    topic: str = Field("mysql.audit.events", description="topic of audit events")
    control_topic: str = Field("mysql.audit.control", description="topic of gaps, heartbeats")
    dlq_topic: str = Field("mysql.audit.dlq", description="dead-letter topic")
    schema_registry_url: str | None = Field(None, description="for Confluent-framed values")
    kafka_config: dict[str, str] = Field(
        default_factory=dict, description="librdkafka pass-through, key=value (security keys)"
    )
    target: TargetText | None = Field(
        None, description="where dumps were uploaded: oci://bucket@ns/prefix or file:///dir"
    )
    work_dir: Path | None = Field(None, description="directory for the on-disk index")
    limit: int = Field(
        100, ge=0, description="findings listed per kind and store (counts are complete)"
    )
    idle_timeout: float = Field(30.0, gt=0, description="seconds before a topic read gives up")
    json_output: bool = Field(False, description="print the report as one JSON object")
    log_json: bool = Field(False, description="log one JSON object per line")

    _bookmarks = field_validator("start", "end")(ConfigError.checked(parse_position))

    @model_validator(mode="after")
    def _contradictions(self) -> ReconcileSettings:
        given = [self.source_dsn, self.bootstrap_servers, self.archive_dsn, self.target]
        if sum(v is not None for v in given) < 2:
            raise ValueError(
                "give at least two stores: --source-dsn, --bootstrap-servers, --archive-dsn, "
                "--target"
            )
        if len({self.topic, self.control_topic, self.dlq_topic}) != 3:
            raise ValueError("--topic, --control-topic and --dlq-topic must all differ")
        self.range()  # the range must not end before it starts
        return self

    def range(self) -> KeyRange:
        """The key range (``--server-uuid``, ``--start``, ``--end``)."""
        start = parse_position(self.start) if self.start else None
        end = parse_position(self.end, upper=True) if self.end else None
        return KeyRange(self.server_uuid, start, end)

    def source(self) -> MySQLDsn | None:
        """The source DSN with its password, or None."""
        return self.source_or_none()

    def archive(self) -> MySQLDsn | None:
        """The archive DSN with its password (database default ``audit_archive``), or None."""
        dsn = self.archive_or_none()
        return None if dsn is None else in_archive_database(dsn)

    def kafka(self) -> dict[str, Any] | None:
        """Librdkafka settings for the topic readers, or None without a broker."""
        if self.bootstrap_servers is None:
            return None
        keep = ("security.", "sasl.", "ssl.", "client.", "socket.", "fetch.", "max.")
        conf: dict[str, Any] = {k: v for k, v in self.kafka_config.items() if k.startswith(keep)}
        conf.update(self.kafka_auth())
        conf["bootstrap.servers"] = self.bootstrap_servers
        conf.setdefault("fetch.message.max.bytes", 16 * 1024 * 1024)
        return conf
