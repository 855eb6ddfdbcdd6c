"""The consumer's settings: contract names, environment, secrets, guarantees that cannot be lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditstream.errors import ConfigError
from auditstream.settings import load
from consumer.config import ArchiveSettings, ConsumerSettings


def test_defaults_and_flag_names_are_the_contract() -> None:
    s = load(ConsumerSettings, ["--archive-dsn", "mysql://arch@db:3306/audit_archive"], prog="c")
    assert (s.topic, s.control_topic, s.dlq_topic, s.group) == (
        "mysql.audit.events",
        "mysql.audit.control",
        "mysql.audit.dlq",
        "auditstream-archive",
    )
    flags = [
        "--archive-dsn", "mysql://a@h/x", "--bootstrap-servers", "k:9092", "--topic", "t",
        "--control-topic", "c", "--group", "g", "--dlq-topic", "d",
        "--schema-registry-url", "http://sr", "--batch-rows", "10", "--batch-bytes", "2048",
        "--batch-linger-ms", "5", "--kafka-config", "fetch.wait.max.ms=10",
        "--kafka-config", "client.id=x", "--once", "--log-json",
    ]  # fmt: skip
    s = load(ConsumerSettings, flags, prog="c")
    assert (s.batch_rows, s.batch_bytes, s.batch_linger_ms, s.once, s.log_json) == (
        10, 2048, 5, True, True,
    )  # fmt: skip
    assert s.kafka_config == {"fetch.wait.max.ms": "10", "client.id": "x"}


def test_every_flag_has_an_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITSTREAM_ARCHIVE_DSN", "mysql://arch@db:3306")
    monkeypatch.setenv("AUDITSTREAM_ARCHIVE_PASSWORD", "s3cret")
    monkeypatch.setenv("AUDITSTREAM_GROUP", "g2")
    monkeypatch.setenv("AUDITSTREAM_BATCH_ROWS", "77")
    s = load(ConsumerSettings, [], prog="c")
    dsn = s.archive()
    assert dsn.database == "audit_archive"  # the conventional name when the DSN gives none
    assert dsn.password is not None and dsn.password.get_secret_value() == "s3cret"
    assert (s.group, s.batch_rows) == ("g2", 77)
    assert "s3cret" not in repr(s) and "s3cret" not in str(s.masked())


def test_password_file(tmp_path: Path) -> None:
    secret = tmp_path / "pw"
    secret.write_text("from-file\n")
    s = ArchiveSettings(archive_dsn="mysql://a@h/x", archive_password_file=secret)
    assert s.archive().connect_kwargs()["password"] == "from-file"


def test_pass_through_cannot_turn_auto_commit_on() -> None:
    s = ConsumerSettings(
        archive_dsn="mysql://a@h/x",
        kafka_config={"enable.auto.commit": "true", "session.timeout.ms": "6000"},
    )
    conf = s.kafka()
    assert conf["enable.auto.commit"] is False
    assert conf["partition.assignment.strategy"] == "cooperative-sticky"
    assert conf["session.timeout.ms"] == "6000"
    assert "enable.partition.eof" not in conf
    assert ConsumerSettings(archive_dsn="mysql://a@h/x", once=True).kafka()["enable.partition.eof"]


@pytest.mark.parametrize(
    "argv, words",
    [
        ([], "--archive-dsn is required"),
        (["--archive-dsn", "postgres://a@h"], "--archive-dsn"),
        (["--archive-dsn", "mysql://a@h", "--dlq-topic", "mysql.audit.events"], "must all differ"),
        (["--archive-dsn", "mysql://a@h", "--batch-rows", "0"], "--batch-rows"),
    ],
)
def test_invalid_settings_are_clear_config_errors(argv: list[str], words: str) -> None:
    with pytest.raises(ConfigError, match=words) as err:
        load(ConsumerSettings, argv, prog="c")
    assert err.value.exit_code == 2


def test_the_rotation_task_ships_with_the_consumers_own_shipping_flags(tmp_path: Path) -> None:
    # One group of fields (consumer.config.ShippingSettings) for the consumer and
    # `consumer upload`: what the consumer was given reaches the UploadSettings of its task.
    from consumer.opsconfig import UploadSettings

    s = load(
        ConsumerSettings,
        [
            "--archive-dsn=mysql://u@h/audit_archive",
            f"--target=file://{tmp_path}/dumps",
            f"--seal-target=file://{tmp_path}/seals",
            "--retention-min-days=30",
            "--retention-policy=warn",
            f"--staging-dir={tmp_path}/staging",
        ],
        prog="consumer",
    )
    upload = UploadSettings(
        archive_dsn="mysql://u@h/audit_archive", target=s.target, **s.shipping()
    )
    assert upload.seal_target == f"file://{tmp_path}/seals"
    assert (upload.retention_min_days, upload.retention_policy) == (30, "warn")
    assert upload.staging_dir == tmp_path / "staging"
    # Unset fields keep the defaults both models share.
    bare = load(ConsumerSettings, ["--archive-dsn=mysql://u@h/audit_archive"], prog="consumer")
    assert bare.shipping() == {}
