"""Kafka over SASL_SSL (SCRAM-SHA-512): the pipeline connects through the settings, a wrong
password or an untrusted certificate ends with one clear error and exit code 3, not a hang.

The broker is an Apache Kafka of this module's own, with a CA and certificate made here and
the SCRAM user created when its storage is formatted.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from auditstream.embedded_kafka import BrokerTls, KafkaBroker
from auditstream.errors import ConfigError
from auditstream.settings import load
from producer.config import ProducerSettings
from tests.faults.pipeline import ROOT, Pipeline, make_pipeline
from tests.harness.emulator_fixtures import EmulatorHandle
from tests.harness.kafka import chosen_broker
from tests.harness.mariadb import drop_database
from tests.harness.tls import Issued, make_ca_and_leaf

USER = "auditstream"
PASSWORD = "scram-pw-7c41e0"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Issued]:
    base = tmp_path_factory.mktemp("tls")
    return {
        "good": make_ca_and_leaf(base / "good", "auditstream test CA"),
        "rogue": make_ca_and_leaf(base / "rogue", "somebody else's CA"),
    }


@pytest.fixture(scope="module")
def secure_kafka(request: pytest.FixtureRequest, certs: dict[str, Issued]) -> Iterator[KafkaBroker]:
    if chosen_broker(request.config) != "kafka":
        pytest.skip("needs the embedded Apache Kafka (a SASL_SSL listener of its own)")
    good = certs["good"]
    broker = KafkaBroker(
        scram_users={USER: PASSWORD}, tls=BrokerTls(ca=good.ca, cert_and_key=good.cert_and_key)
    ).start()
    try:
        yield broker
    finally:
        broker.cleanup()


@pytest.fixture
def secure_pipeline(
    secure_kafka: KafkaBroker,
    emulator_factory: Callable[..., EmulatorHandle],
    mysql_server: Any,
    tmp_path: Path,
) -> Iterator[Pipeline]:
    pipe = make_pipeline(
        emulator_factory(), secure_kafka.sasl_bootstrap, mysql_server.dsn, tmp_path
    )
    yield pipe
    pipe.stop_all()
    drop_database(pipe.archive)


def password_file(tmp_path: Path, password: str) -> Path:
    path = tmp_path / "kafka-password"
    path.write_text(password + "\n")
    path.chmod(0o600)
    return path


def auth_flags(tmp_path: Path, ca: Path, password: str = PASSWORD) -> list[str]:
    return [
        "--kafka-user", USER,
        "--kafka-password-file", str(password_file(tmp_path, password)),
        "--kafka-ca", str(ca),
    ]  # fmt: skip


@pytest.mark.real_kafka
def test_producer_consumer_and_reconcile_connect_through_sasl_ssl(
    secure_pipeline: Pipeline, certs: dict[str, Issued], tmp_path: Path
) -> None:
    pipe = secure_pipeline
    ca = certs["good"].ca
    pipe.write(300)
    pipe.producer_once(*auth_flags(tmp_path, ca), "--batch-events", "100")
    assert PASSWORD not in pipe.log("producer")
    pipe.consumer_once(
        kafka_user=USER, kafka_password_file=password_file(tmp_path, PASSWORD), kafka_ca=ca
    )
    assert pipe.archived() == 300
    conf = {
        "bootstrap.servers": pipe.bootstrap,
        "security.protocol": "sasl_ssl",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": USER,
        "sasl.password": PASSWORD,
        "ssl.ca.location": str(ca),
    }
    pipe.assert_clean(300, kafka=conf)


@pytest.mark.real_kafka
@pytest.mark.parametrize(
    ("password", "ca", "says"),
    [
        ("not-the-password", "good", "Authentication failed"),
        (PASSWORD, "rogue", "certificate verify failed"),
    ],
    ids=["wrong-password", "untrusted-certificate"],
)
def test_refused_login_or_certificate_is_one_clear_error_and_exit_3(
    secure_pipeline: Pipeline,
    certs: dict[str, Issued],
    tmp_path: Path,
    password: str,
    ca: str,
    says: str,
) -> None:
    pipe = secure_pipeline
    pipe.write(10)
    for command in ("producer", "consumer"):
        argv = (
            pipe.producer_argv("--once", *auth_flags(tmp_path, certs[ca].ca, password))
            if command == "producer"
            else pipe.consumer_argv("--once", *auth_flags(tmp_path, certs[ca].ca, password))
        )
        started = time.monotonic()
        done = subprocess.run(
            argv, cwd=ROOT, env=pipe.env(), capture_output=True, text=True, timeout=120
        )
        took = time.monotonic() - started
        assert done.returncode == 3, (command, done.stderr[-3000:])
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and "Kafka refused the connection" in errors[0], done.stderr
        assert says in errors[0]
        assert took < 60, f"{command} took {took:.0f} s to give up"
        assert password not in done.stderr


def test_sasl_password_is_refused_on_the_command_line() -> None:
    for argv in (
        ["--kafka-config", "sasl.password=hunter2"],
        ["--kafka-config=sasl.password=hunter2"],
    ):
        with pytest.raises(ConfigError, match="not accepted on the command line") as caught:
            load(ProducerSettings, ["--source-dsn", "mysql://a@h:1", *argv], prog="producer")
        assert "hunter2" not in str(caught.value)


def test_a_user_without_a_password_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--kafka-user and a Kafka password go together"):
        load(
            ProducerSettings,
            ["--source-dsn", "mysql://a@h:1", "--kafka-user", "u"],
            prog="producer",
        )


def test_auth_settings_become_librdkafka_keys(
    tmp_path: Path, certs: dict[str, Issued], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDITSTREAM_KAFKA_PASSWORD", "from-env")
    settings = load(
        ProducerSettings,
        ["--source-dsn", "mysql://a@h:1", "--kafka-user", "u", "--kafka-ca", str(certs["good"].ca)],
        prog="producer",
    )
    conf = settings.kafka()
    assert conf["security.protocol"] == "sasl_ssl"
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert (conf["sasl.username"], conf["sasl.password"]) == ("u", "from-env")
    assert conf["ssl.ca.location"] == str(certs["good"].ca)
    assert settings.admin()["sasl.password"] == "from-env"
    assert "from-env" not in str(settings.masked())
