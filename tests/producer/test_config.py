"""Producer settings: the flag names are a contract, validation names the bad setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditstream.errors import ConfigError
from auditstream.settings import load
from producer.config import ProducerSettings


def build(argv: list[str]) -> ProducerSettings:
    return load(ProducerSettings, argv, prog="producer")


def test_contract_flags_and_defaults() -> None:
    s = build(
        [
            "--source-dsn", "mysql://archiver@db1:3306",
            "--bootstrap-servers", "k1:9092",
            "--kafka-config", "compression.type=lz4",
            "--kafka-config", "acks=0",
            "--batch-events", "500",
            "--start-from", "2024-05-01",
            "--allow-self-audit",
            "--once",
        ]
    )  # fmt: skip
    assert s.topic == "mysql.audit.events" and s.control_topic == "mysql.audit.control"
    assert s.read_buffer_size == 4 * 1024 * 1024 and s.partitions == 6
    assert s.start_timestamp() == "2024-05-01 00:00:00"
    assert s.once and s.allow_self_audit and s.batch_events == 500
    conf = s.kafka()
    assert conf["compression.type"] == "lz4"
    assert (
        conf["acks"] == "all" and conf["enable.idempotence"] is True
    )  # pass-through cannot weaken
    # The bookmark store defaults to the source server.
    assert s.bookmark().host == "db1" and s.bookmark().user == "archiver"


def test_every_flag_is_an_environment_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("AUDITSTREAM_SOURCE_DSN", "mysql://archiver@db1")
    monkeypatch.setenv("AUDITSTREAM_SOURCE_PASSWORD_FILE", str(secret))
    monkeypatch.setenv("AUDITSTREAM_BOOKMARK_DSN", "mysql://bm@db2/marks")
    monkeypatch.setenv("AUDITSTREAM_BOOKMARK_PASSWORD", "bmpw")
    monkeypatch.setenv("AUDITSTREAM_TOPIC", "t1")
    monkeypatch.setenv("AUDITSTREAM_READ_BUFFER_SIZE", "65536")
    monkeypatch.setenv("AUDITSTREAM_KAFKA_CONFIG", '{"linger.ms": "5"}')
    monkeypatch.setenv("AUDITSTREAM_ONCE", "true")
    s = build([])
    assert s.source().password is not None
    assert s.source().password.get_secret_value() == "s3cret"
    assert s.bookmark().database == "marks" and s.bookmark().password is not None
    assert s.topic == "t1" and s.read_buffer_size == 65536 and s.once
    assert s.kafka()["linger.ms"] == "5"
    assert "s3cret" not in str(s.masked()) and "bmpw" not in str(s.masked())


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--read-buffer-size", "1000"], "--read-buffer-size"),
        (["--read-buffer-size", "4194305"], "--read-buffer-size"),
        (["--start-from", "yesterday"], "--start-from"),
        (["--batch-events", "0"], "--batch-events"),
        (["--topic", "x", "--control-topic", "x"], "--control-topic"),
    ],
)
def test_invalid_settings_name_the_flag(argv: list[str], flag: str) -> None:
    with pytest.raises(ConfigError, match="invalid setting") as info:
        build(["--source-dsn", "mysql://a@h", *argv])
    assert flag in str(info.value)


def test_source_dsn_is_required_and_checked() -> None:
    with pytest.raises(ConfigError, match="source-dsn is required"):
        build([])
    with pytest.raises(ConfigError, match="mysql://user"):
        build(["--source-dsn", "postgres://x@y"])


def test_a_password_inside_a_dsn_never_reaches_the_log_line() -> None:
    s = build(["--source-dsn", "mysql://a:hunter2@h:3306", "--bookmark-dsn", "mysql://b:pw2@h2"])
    shown = str(s.masked())
    assert "hunter2" not in shown and "pw2" not in shown
    assert s.source().password is not None  # still usable


def test_pages_in_flight_and_the_librdkafka_queue_are_bounded() -> None:
    s = build(["--source-dsn", "mysql://a@h"])
    assert s.pages_in_flight == 3 and s.options().pages_in_flight == 3
    assert s.kafka()["queue.buffering.max.kbytes"] == 64 * 1024  # librdkafka's own: 1 GB
    assert (
        build(["--source-dsn", "mysql://a@h", "--pages-in-flight", "1"]).options().pages_in_flight
        == 1
    )
    for bad in ("0", "17"):
        with pytest.raises(ConfigError, match="invalid setting") as info:
            build(["--source-dsn", "mysql://a@h", "--pages-in-flight", bad])
        assert "--pages-in-flight" in str(info.value)
    # A queue smaller than one message would refuse the largest event forever.
    with pytest.raises(ConfigError, match=r"queue\.buffering\.max\.kbytes"):
        build(["--source-dsn", "mysql://a@h", "--kafka-config", "queue.buffering.max.kbytes=1024"])
