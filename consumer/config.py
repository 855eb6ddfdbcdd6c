"""The consumer's settings: one member of the group that writes the topics into the archive.

Every field is a flag (``--archive-dsn``) and an environment variable
(``AUDITSTREAM_ARCHIVE_DSN``); the names are a contract operators' scripts depend on. Passwords
come from the environment or a file, never from the command line (``ps`` shows it to every user).

Trap: build these only in ``consumer.__main__`` (``auditstream.settings.load``); tests construct
``ConsumerSettings(...)`` directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from auditstream.connections import ArchiveDb, in_archive_database
from auditstream.dsn import MySQLDsn
from auditstream.errors import ConfigError
from auditstream.kafka import consumer_config, producer_config
from auditstream.kafkaauth import KafkaAuthSettings
from auditstream.settings import ServiceSettings
from consumer.targets import TargetText

if TYPE_CHECKING:
    from consumer.upload import OciOptions


class ArchiveSettings(ArchiveDb):
    """Where the archive lives (``python -m consumer setup`` needs only this)."""

    log_json: bool = Field(False, description="log one JSON object per line")

    def archive(self) -> MySQLDsn:
        """The archive DSN with its password filled in; the database defaults to audit_archive."""
        dsn = self.archive_or_none()
        if dsn is None:
            raise ConfigError("--archive-dsn is required (AUDITSTREAM_ARCHIVE_DSN)")
        return in_archive_database(dsn)


class OciSettings(ServiceSettings):
    """How to reach OCI Object Storage (for an ``oci://`` target; mixed into commands)."""

    oci_auth: Literal["config", "instance_principal", "resource_principal"] = Field(
        "config", description="config file profile, or instance/resource principals"
    )
    oci_config_file: Path | None = Field(None, description="OCI config file (~/.oci/config)")
    oci_profile: str = Field("DEFAULT", description="profile in the OCI config file")
    oci_endpoint: str | None = Field(None, description="Object Storage endpoint override")

    def oci_options(self, **knobs: Any) -> OciOptions:
        """``consumer.upload.OciOptions`` of these settings (the SDK is imported only here)."""
        from consumer.upload import OciOptions

        return OciOptions(
            auth=self.oci_auth,
            config_file=self.oci_config_file,
            profile=self.oci_profile,
            endpoint=self.oci_endpoint,
            **knobs,
        )


class ShippingSettings(ServiceSettings):
    """How dumps and checkpoints are shipped: staging, the checkpoints' target, retention.

    One group of fields for ``consumer upload``/``restore`` (``consumer.opsconfig``) and the
    consumer's own rotation task (``--target``), so the flags mean the same in both.
    """

    staging_dir: Path = Field(Path("auditstream-staging"), description="local dir for dumps")
    seal_target: TargetText | None = Field(
        None,
        description="also write each signed checkpoint, create-only, under oci://... or "
        "file://... (a bucket with a retention rule, apart from the dumps)",
    )
    retention_min_days: float | None = Field(
        None,
        gt=0,
        description="require a time-bound retention rule of at least this many days on the "
        "bucket before the first upload (dumps and checkpoints)",
    )
    retention_policy: Literal["refuse", "warn"] = Field(
        "refuse", description="without such a rule: refuse to upload, or warn and upload"
    )

    def shipping(self) -> dict[str, Any]:
        """These fields as keyword arguments for another settings model (set ones only)."""
        return self.model_dump(include=set(ShippingSettings.model_fields), exclude_unset=True)


class ConsumerSettings(ArchiveSettings, KafkaAuthSettings, ShippingSettings):
    """Everything ``python -m consumer`` reads."""

    bootstrap_servers: str = Field("localhost:9092", description="Kafka bootstrap servers")
    topic: str = Field("mysql.audit.events", description="topic of audit events")
    control_topic: str = Field("mysql.audit.control", description="topic of gaps, heartbeats")
    group: str = Field("auditstream-archive", description="consumer group id")
    dlq_topic: str = Field("mysql.audit.dlq", description="dead-letter topic (created if missing)")
    schema_registry_url: str | None = Field(
        None, description="resolve Confluent-framed values here (single-object needs none)"
    )
    # Measured (one process draining 40k bench events, session 3): peak RSS 301 MB with 5000
    # rows per batch, 215 MB with 2000, 141 MB with 1000. Session 6, with the compiled reader
    # and the fetch bounds: 2000 rows drained 16 % faster than 1000 in paired runs (median of 3:
    # the transaction's six small statements and their GIL hand-overs, when the server idles,
    # are paid half as often), the LOAD DATA limit being timed at the same size.
    batch_rows: int = Field(2000, ge=1, le=65535, description="most records per transaction")
    batch_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024,
        description="most value bytes per transaction (two batches are held: one in its "
        "transaction, the next being decoded)",
    )
    batch_linger_ms: int = Field(
        200, ge=0, description="longest wait for a batch to fill before it is written (ms)"
    )
    insert_method: Literal["load", "insert"] = Field(
        "load",
        description="load: LOAD DATA LOCAL INFILE (needs local_infile=ON); insert: multi-row",
    )
    kafka_config: dict[str, str] = Field(
        default_factory=dict, description="librdkafka pass-through, key=value (repeatable)"
    )
    once: bool = Field(False, description="stop when every assigned partition is caught up")
    backoff_max: float = Field(30.0, gt=0, description="longest wait between retries (s)")
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="serve /metrics, /healthz, /readyz on this port"
    )
    rotate: bool = Field(True, description="rotate audit_data from inside the consumer")
    rotate_interval: str | None = Field(
        "1d", description="rotate at UTC boundaries of this interval (1h, 1d); none: thresholds"
    )
    rotate_max_rows: int | None = Field(None, ge=1, description="also rotate at this many rows")
    rotate_max_bytes: int | None = Field(None, ge=1, description="also rotate at this size")
    rotate_check_seconds: float = Field(
        30.0, gt=0, description="how often the consumer checks whether a rotation is due (s)"
    )
    target: TargetText | None = Field(
        None,
        description="also dump, upload and verify rotated tables to oci://... or file://... "
        "(default: leave that to `consumer upload`)",
    )
    method: Literal["dump", "export"] = Field("dump", description="dump format with --target")

    @field_validator("rotate_interval", "target", "seal_target", mode="before")
    @classmethod
    def _none(cls, value: object) -> object:
        """``none``/``off`` on the command line or in the environment mean: not set."""
        return None if isinstance(value, str) and value.lower() in ("", "none", "off") else value

    @model_validator(mode="after")
    def _contradictions(self) -> ConsumerSettings:
        if self.archive_dsn is None:
            raise ValueError("--archive-dsn is required (AUDITSTREAM_ARCHIVE_DSN)")
        names = {self.topic, self.control_topic, self.dlq_topic}
        if len(names) != 3:
            raise ValueError("--topic, --control-topic and --dlq-topic must all differ")
        if self.rotate_interval is not None:
            from consumer.rotation import parse_interval

            try:
                parse_interval(self.rotate_interval)
            except ConfigError as exc:
                raise ValueError(f"--rotate-interval: {exc.message}") from None
        return self

    def kafka(self) -> dict[str, Any]:
        """Librdkafka consumer settings; manual commits always win over the pass-through."""
        conf = consumer_config(
            self.bootstrap_servers, self.group, {**self.kafka_config, **self.kafka_auth()}
        )
        if self.once:
            conf["enable.partition.eof"] = True
        return conf

    def dlq_producer(self) -> dict[str, Any]:
        """Settings of the dead-letter producer (security keys of the pass-through apply)."""
        keep = ("security.", "sasl.", "ssl.", "client.", "socket.", "metadata.")
        conf = {k: v for k, v in self.kafka_config.items() if k.startswith(keep)}
        conf.update(self.kafka_auth())
        return producer_config(self.bootstrap_servers, conf, linger_ms=5)

    def admin(self) -> dict[str, Any]:
        """Settings for the admin client that creates the DLQ topic."""
        return self.admin_config(self.bootstrap_servers, self.kafka_config)
