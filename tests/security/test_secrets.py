"""Secrets never appear in logs, the printed settings, error messages or metrics.

The shipped commands run with known passwords (environment, password files, a DSN that
carries one, wrong ones), in human and JSON log formats, succeeding and failing; every byte
they print is searched for every secret. The metrics registry is searched too.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from auditstream import mysql as db
from auditstream.dsn import MySQLDsn
from auditstream.embedded import free_port
from auditstream.position import Position
from consumer.config import ConsumerSettings
from producer.bookmark import BookmarkStore
from producer.config import ProducerSettings
from tests.faults.pipeline import ROOT, Pipeline, make_pipeline, wait_for
from tests.harness.emulator_fixtures import EmulatorHandle
from tests.harness.kafka import FAST_GROUP
from tests.harness.mariadb import drop_database

SOURCE_PW = "Src-S3cret-7f3a"
ARCHIVE_PW = "Arc-S3cret-91bd"
WRONG_PW = "Wr0ng-S3cret-c4"
INLINE_PW = "Inl1ne-S3cret-55"
KAFKA_PW = "Kafka-S3cret-0e"
SECRETS = (SOURCE_PW, ARCHIVE_PW, WRONG_PW, INLINE_PW, KAFKA_PW)


@pytest.fixture
def secured(
    emulator_factory: Callable[..., EmulatorHandle],
    bootstrap: str,
    mysql_server: Any,
    tmp_path: Path,
) -> Iterator[tuple[Pipeline, MySQLDsn]]:
    """A pipeline whose source and archive accounts have known passwords."""
    emu = emulator_factory(users=[f"archiver:{SOURCE_PW}:AUDIT_ADMIN", "admin:admin-pw:ALL"])
    pipe = make_pipeline(emu, bootstrap, mysql_server.dsn, tmp_path)
    user = f"sec_{os.getpid()}"
    conn = db.connect(mysql_server.dsn, autocommit=True)
    try:
        cur = conn.cursor()
        cur.execute(f"CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{ARCHIVE_PW}'")
        cur.execute(f"GRANT ALL ON `{pipe.archive.database}`.* TO '{user}'@'%'")
    finally:
        conn.close()
    archive = MySQLDsn(
        user=user, host=pipe.archive.host, port=pipe.archive.port, database=pipe.archive.database
    )
    yield pipe, archive
    pipe.stop_all()
    drop_database(pipe.archive)
    conn = db.connect(mysql_server.dsn, autocommit=True)
    try:
        conn.cursor().execute(f"DROP USER IF EXISTS '{user}'@'%'")
    finally:
        conn.close()


def run(argv: list[str], env: dict[str, str], timeout: float = 90.0) -> tuple[int, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AUDITSTREAM_")}
    done = subprocess.run(
        [sys.executable, "-m", "ops.cli", *argv],
        env={**clean, **env},
        cwd=ROOT,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode, done.stdout.decode(errors="replace") + done.stderr.decode(
        errors="replace"
    )


def caught_up(pipe: Pipeline) -> None:
    assert pipe.emu.writer.last is not None
    last = Position(*pipe.emu.writer.last)
    store = BookmarkStore(pipe.archive)
    try:
        wait_for(lambda: store.load(pipe.emu.server_uuid) == last, 60)
    finally:
        store.close()


def assert_no_secret(output: str) -> None:
    for secret in SECRETS:
        assert secret not in output, f"secret {secret!r} printed:\n{output[-3000:]}"


def test_commands_never_print_their_secrets(
    secured: tuple[Pipeline, MySQLDsn], tmp_path: Path
) -> None:
    pipe, archive = secured
    pw_file = tmp_path / "archive.pw"
    pw_file.write_text(ARCHIVE_PW + "\n")
    pipe.write(200)
    source = f"mysql://archiver@127.0.0.1:{pipe.emu.port}"
    common = {"AUDITSTREAM_SOURCE_PASSWORD": SOURCE_PW}
    outputs: list[str] = []
    for log_json in (["--log-json"],):  # the human format: test_failures_never_print_the_secret
        metrics_port = free_port()
        producer = subprocess.Popen(
            [sys.executable, "-m", "ops.cli", "producer", f"--source-dsn={source}",
             f"--bookmark-dsn={archive.url()}", f"--bootstrap-servers={pipe.bootstrap}",
             f"--topic={pipe.topic}", f"--control-topic={pipe.control}",
             "--start-from=earliest", f"--metrics-port={metrics_port}",
             "--idle-max=0.2", *log_json],
            env={**{k: v for k, v in os.environ.items() if not k.startswith("AUDITSTREAM_")},
                 **common, "AUDITSTREAM_BOOKMARK_PASSWORD": ARCHIVE_PW},
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{metrics_port}/metrics"
            caught_up(pipe)
            outputs.append(_get(url) or "")
        finally:
            producer.terminate()
            printed, _ = producer.communicate(timeout=30)
        outputs.append(printed.decode(errors="replace"))
        code, out = run(
            ["consumer", f"--archive-dsn={archive.url()}", f"--bootstrap-servers={pipe.bootstrap}",
             f"--topic={pipe.topic}", f"--control-topic={pipe.control}", f"--dlq-topic={pipe.dlq}",
             f"--group={pipe.group}", "--once", f"--archive-password-file={pw_file}",
             *[f"--kafka-config={k}={v}" for k, v in FAST_GROUP.items()], *log_json],
            {},
        )  # fmt: skip
        assert code == 0, out
        outputs.append(out)
        code, out = run(
            ["reconcile", f"--source-dsn={source}", f"--archive-dsn={archive.url()}",
             f"--bootstrap-servers={pipe.bootstrap}", f"--topic={pipe.topic}",
             f"--control-topic={pipe.control}", f"--dlq-topic={pipe.dlq}", *log_json],
            {**common, "AUDITSTREAM_ARCHIVE_PASSWORD": ARCHIVE_PW},
        )  # fmt: skip
        assert code == 0, out
        outputs.append(out)
        code, out = run(["status", f"--archive-dsn={archive.url()}"],
                        {"AUDITSTREAM_ARCHIVE_PASSWORD": ARCHIVE_PW})  # fmt: skip
        outputs.append(out)
    for output in outputs:
        assert_no_secret(output)
    assert any("***" in o for o in outputs), "the settings line should show masked secrets"


@pytest.mark.parametrize(
    "argv",
    [
        ["consumer", "setup", f"--archive-dsn=mysql://nobody:{INLINE_PW}@127.0.0.1:1/db"],
        [
            "reconcile",
            f"--archive-dsn=mysql://nobody:{INLINE_PW}@127.0.0.1:1/db",
            "--target=file:///nonexistent",
        ],
        [
            "producer",
            f"--source-dsn=mysql://a:{INLINE_PW}@127.0.0.1:1",
            "--once",
            "--bootstrap-servers=127.0.0.1:1",
            "--backoff-max=0.1",
        ],
        [
            "consumer",
            "setup",
            "--archive-dsn=mysql://x@127.0.0.1:1/db",
            f"--archive-password={INLINE_PW}",
        ],
        ["status", f"--archive-dsn=mysql://nobody:{INLINE_PW}@127.0.0.1:1/db"],
    ],
)
def test_failures_never_print_the_secret(argv: list[str]) -> None:
    code, out = run(argv, {"AUDITSTREAM_ARCHIVE_PASSWORD": WRONG_PW}, timeout=60)
    assert code != 0
    assert_no_secret(out)


def test_wrong_passwords_are_refused_without_being_printed(
    secured: tuple[Pipeline, MySQLDsn],
) -> None:
    _pipe, archive = secured
    code, out = run(
        ["consumer", "setup", f"--archive-dsn={archive.url()}"],
        {"AUDITSTREAM_ARCHIVE_PASSWORD": WRONG_PW},
    )
    assert code != 0 and "Access denied" in out
    assert_no_secret(out)


SETTINGS = [
    ("producer.config:ProducerSettings", {"source_dsn": f"mysql://a:{INLINE_PW}@h:1",
     "bookmark_dsn": f"mysql://a:{INLINE_PW}@h:1"}),
    ("consumer.config:ConsumerSettings", {"archive_dsn": f"mysql://a:{INLINE_PW}@h:1/db"}),
    ("consumer.opsconfig:UploadSettings", {"archive_dsn": f"mysql://a:{INLINE_PW}@h:1/db"}),
    ("ops.reconcile.config:ReconcileSettings",
     {"archive_dsn": f"mysql://a:{INLINE_PW}@h:1/db", "source_dsn": f"mysql://a:{INLINE_PW}@h:1"}),
    ("ops.verify.config:VerifySettings", {"archive_dsn": f"mysql://a:{INLINE_PW}@h:1/db"}),
    ("ops.status:StatusSettings", {"archive_dsn": f"mysql://a:{INLINE_PW}@h:1/db"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "values"),
    [pytest.param(n, v, id=n) for n, v in SETTINGS],
)
def test_masked_settings_hide_passwords_inside_dsns(name: str, values: dict[str, Any]) -> None:
    """What every command logs at start (and would print for --print-config)."""
    module, cls = name.split(":")
    settings = (
        getattr(importlib.import_module(module), cls)(
            **values, kafka_config={"sasl.password": KAFKA_PW}
        )
        if "kafka_config" in getattr(importlib.import_module(module), cls).model_fields
        else (getattr(importlib.import_module(module), cls)(**values))
    )
    assert_no_secret(repr(settings.masked()))


# The Kafka password comes from AUDITSTREAM_KAFKA_PASSWORD (``--kafka-config sasl.password=``
# is refused on the command line: tests/security/test_kafka_sasl_ssl.py).
PRINT_CONFIG = [
    ["producer", f"--source-dsn=mysql://a:{INLINE_PW}@h:1", "--kafka-user=u"],
    ["consumer", f"--archive-dsn=mysql://a:{INLINE_PW}@h:1/db", "--kafka-user=u"],
    ["consumer", "upload", f"--archive-dsn=mysql://a:{INLINE_PW}@h:1/db"],
    ["reconcile", f"--archive-dsn=mysql://a:{INLINE_PW}@h:1/db", "--target=file:///x",
     "--kafka-user=u"],
    ["status", f"--archive-dsn=mysql://a:{INLINE_PW}@h:1/db"],
]  # fmt: skip


@pytest.mark.parametrize("argv", PRINT_CONFIG, ids=lambda a: " ".join(a[:2]))
def test_print_config_masks_every_secret(argv: list[str]) -> None:
    env = {"AUDITSTREAM_SOURCE_PASSWORD": SOURCE_PW, "AUDITSTREAM_ARCHIVE_PASSWORD": ARCHIVE_PW}
    if "--kafka-user=u" in argv:
        env["AUDITSTREAM_KAFKA_PASSWORD"] = KAFKA_PW
    code, out = run([*argv, "--print-config"], env, timeout=60)
    assert code == 0, out
    assert "***" in out
    assert_no_secret(out)


def test_dsns_and_connection_errors_hide_the_password() -> None:
    producer = ProducerSettings.model_validate(
        {"source_dsn": f"mysql://a:{INLINE_PW}@h:1", "source_password": SOURCE_PW}
    )
    consumer = ConsumerSettings.model_validate(
        {"archive_dsn": "mysql://a@h:1/db", "archive_password": ARCHIVE_PW}
    )
    assert_no_secret(str(producer.source()) + repr(consumer.archive()) + str(consumer.archive()))
    with pytest.raises(db.Error) as caught:
        db.connect(producer.source().model_copy(update={"port": free_port()}))
    assert_no_secret(str(caught.value) + repr(caught.value))


def test_the_metrics_registry_holds_no_secret() -> None:
    from prometheus_client import REGISTRY, generate_latest

    assert_no_secret(generate_latest(REGISTRY).decode())


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bytes(resp.read()).decode()
    except OSError:
        return None
