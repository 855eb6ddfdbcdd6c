"""Settings precedence (flags > environment > TOML file) and clear errors for invalid ones."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import pytest
from pydantic import Field, SecretStr

from auditstream.dsn import MySQLDsn, mask
from auditstream.errors import ConfigError
from auditstream.settings import ServiceSettings, load


class Demo(ServiceSettings):
    source_dsn: str = "mysql://root@127.0.0.1:3306"
    source_password: SecretStr | None = None
    partitions: int = Field(default=6, ge=1)
    start_from: Literal["latest", "earliest"] = "latest"
    kafka_config: dict[str, str] = Field(default_factory=dict)
    once: bool = False


def test_precedence_flags_over_env_over_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "auditstream.toml"
    config.write_text(
        'partitions = 9\nstart_from = "earliest"\nonce = true\n[demo]\nsource_dsn = "mysql://f@file:1"\n'
    )
    monkeypatch.setenv("AUDITSTREAM_PARTITIONS", "3")
    monkeypatch.setenv("AUDITSTREAM_SOURCE_PASSWORD", "s3cret")
    s = load(
        Demo,
        ["--config", str(config), "--start-from", "latest", "--kafka-config", "linger.ms=5"],
        prog="demo",
        section="demo",
    )
    assert s.partitions == 3  # env beats file
    assert s.start_from == "latest"  # flag beats file
    assert s.once is True  # file
    assert s.source_dsn == "mysql://f@file:1"  # section
    assert s.kafka_config == {"linger.ms": "5"}
    assert s.masked()["source_password"] == "***"
    assert "s3cret" not in repr(s)


def test_invalid_setting_names_flag_value_and_rule() -> None:
    with pytest.raises(ConfigError) as err:
        load(Demo, ["--partitions", "0"], prog="demo")
    text = str(err.value)
    assert "--partitions" in text
    assert "AUDITSTREAM_PARTITIONS" in text
    assert "0" in text
    assert "greater than or equal to 1" in text
    assert err.value.exit_code == 2


def test_invalid_value_in_file_is_reported_by_its_flag_name(
    tmp_path: Path,
) -> None:
    config = tmp_path / "c.toml"
    config.write_text('partitions = "many"\n')
    with pytest.raises(ConfigError, match="--partitions"):
        load(Demo, ["--config", str(config)], prog="demo")


def test_dsn_masks_password_everywhere() -> None:
    dsn = MySQLDsn.parse("mysql://arch:p%40ss@db.example:3307/audit_archive?ssl_ca=/ca.pem")
    assert dsn.password is not None and dsn.password.get_secret_value() == "p@ss"
    assert dsn.port == 3307 and dsn.database == "audit_archive"
    assert "p@ss" not in str(dsn) and "p%40ss" not in str(dsn)
    assert dsn.connect_kwargs()["password"] == "p@ss"
    assert dsn.connect_kwargs()["ssl_ca"] == "/ca.pem"
    assert mask("mysql://a:hunter2@h:1") == "mysql://a:***@h:1"


@pytest.mark.parametrize(
    "text", ["postgres://a@b", "mysql://", "mysql://a@h:notaport", "mysql://a@h?evil=1"]
)
def test_bad_dsn_is_a_config_error_without_secret(text: str) -> None:
    with pytest.raises(ConfigError) as err:
        MySQLDsn.parse(text.replace("a@", "a:topsecret@"))
    assert "topsecret" not in str(err.value)


def test_password_flags_are_refused_without_echoing_the_secret() -> None:
    with pytest.raises(ConfigError) as err:
        load(Demo, ["--source-password", "hunter2"], prog="demo")
    assert "AUDITSTREAM_SOURCE_PASSWORD" in str(err.value)
    assert "hunter2" not in str(err.value)
    with pytest.raises(ConfigError):
        load(Demo, ["--source-password=hunter2"], prog="demo")


def test_print_config_shows_effective_settings_with_secrets_masked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUDITSTREAM_SOURCE_PASSWORD", "hunter2")
    with pytest.raises(SystemExit) as stop:
        load(
            Demo,
            ["--print-config", "--partitions", "4", "--source-dsn", "mysql://u:inline@h:1"],
            prog="demo",
        )
    assert stop.value.code == 0
    out = capsys.readouterr().out
    printed = json.loads(out)
    assert printed["partitions"] == 4
    assert printed["source_password"] == "***"
    assert "hunter2" not in out
    assert "inline" not in out
