"""Settings for a Kafka that wants TLS and SASL: user, password (env or file), CA, cert, key.

Every command that talks to Kafka inherits :class:`KafkaAuthSettings`; its
:meth:`~KafkaAuthSettings.kafka_auth` gives the librdkafka keys, applied over the
``--kafka-config`` pass-through. ``sasl.password`` is refused on the command line
(``auditstream.settings``): ``ps`` shows flags to every user of the host.

Traps:
- ``--kafka-user`` alone means ``SASL_SSL`` with SCRAM-SHA-512; say ``--kafka-security-protocol
  sasl_plaintext`` explicitly to send a password without TLS.
- librdkafka checks the broker's host name against its certificate: bootstrap with the name the
  certificate carries (``localhost``, not ``127.0.0.1``, for the test broker).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator

from auditstream.settings import ServiceSettings

Protocol = Literal["plaintext", "ssl", "sasl_plaintext", "sasl_ssl"]
Mechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]


class KafkaAuthSettings(ServiceSettings):
    """TLS and SASL for the Kafka clients (mixed into each command's settings)."""

    kafka_security_protocol: Protocol | None = Field(
        None, description="default: sasl_ssl with --kafka-user, ssl with --kafka-ca, else as given"
    )
    kafka_sasl_mechanism: Mechanism = Field("SCRAM-SHA-512", description="SASL mechanism")
    kafka_user: str | None = Field(None, description="SASL user name")
    kafka_password: SecretStr | None = Field(
        None, description="SASL password (AUDITSTREAM_KAFKA_PASSWORD only, never a flag)"
    )
    kafka_password_file: Path | None = Field(None, description="file holding the SASL password")
    kafka_ca: Path | None = Field(None, description="PEM file of the CA that signed the brokers")
    kafka_cert: Path | None = Field(None, description="PEM client certificate (mutual TLS)")
    kafka_key: Path | None = Field(None, description="PEM key of --kafka-cert")

    @model_validator(mode="after")
    def _auth_consistent(self) -> KafkaAuthSettings:
        has_password = self.kafka_password is not None or self.kafka_password_file is not None
        if self.kafka_password is not None and self.kafka_password_file is not None:
            raise ValueError(
                "give the Kafka password by AUDITSTREAM_KAFKA_PASSWORD or file, not both"
            )
        if has_password != (self.kafka_user is not None):
            raise ValueError("--kafka-user and a Kafka password go together")
        if (self.kafka_cert is None) != (self.kafka_key is None):
            raise ValueError("--kafka-cert and --kafka-key go together")
        for name in ("kafka_password_file", "kafka_ca", "kafka_cert", "kafka_key"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"--{name.replace('_', '-')}: no such file: {path}")
        return self

    def kafka_auth(self) -> dict[str, str]:
        """The librdkafka keys these settings stand for (empty when none is given)."""
        conf: dict[str, str] = {}
        protocol = self.kafka_security_protocol
        if protocol is None and self.kafka_user is not None:
            protocol = "sasl_ssl"
        elif protocol is None and self.kafka_ca is not None:
            protocol = "ssl"
        if protocol is not None:
            conf["security.protocol"] = protocol
        if self.kafka_user is not None:
            conf["sasl.mechanism"] = self.kafka_sasl_mechanism
            conf["sasl.username"] = self.kafka_user
            conf["sasl.password"] = self._password()
        for key, path in (
            ("ssl.ca.location", self.kafka_ca),
            ("ssl.certificate.location", self.kafka_cert),
            ("ssl.key.location", self.kafka_key),
        ):
            if path is not None:
                conf[key] = str(path)
        return conf

    def admin_config(self, bootstrap: str, passthrough: Mapping[str, str]) -> dict[str, Any]:
        """An admin client's settings: the security keys of ``--kafka-config``, then these."""
        keep = ("security.", "sasl.", "ssl.", "client.")
        conf: dict[str, Any] = {k: v for k, v in passthrough.items() if k.startswith(keep)}
        conf.update(self.kafka_auth())
        conf["bootstrap.servers"] = bootstrap
        return conf

    def _password(self) -> str:
        if self.kafka_password is not None:
            return self.kafka_password.get_secret_value()
        assert self.kafka_password_file is not None  # noqa: S101 - the validator guarantees it
        return self.kafka_password_file.read_text(encoding="utf-8").rstrip("\r\n")
