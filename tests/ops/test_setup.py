"""``auditstream setup`` on a real archive: tables and a least-privilege account that works."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from auditstream import mysql as db
from auditstream.dsn import MySQLDsn
from ops.cli import main as cli


@pytest.fixture
def consumer_user(mysql_db: MySQLDsn) -> Iterator[str]:
    name = f"c_{uuid.uuid4().hex[:10]}"
    yield name
    conn = db.connect(mysql_db, autocommit=True)
    try:
        conn.cursor().execute(f"DROP USER IF EXISTS '{name}'@'127.0.0.1'")
    finally:
        conn.close()


def test_setup_creates_tables_and_a_consumer_account_limited_to_the_archive(
    mysql_db: MySQLDsn, consumer_user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDITSTREAM_CONSUMER_PASSWORD", "s3cret-pw")
    argv = [
        "setup",
        f"--archive-dsn={mysql_db}",
        f"--consumer-user={consumer_user}",
        "--consumer-host=127.0.0.1",
    ]
    assert cli(argv) == 0
    assert cli(argv) == 0  # idempotent

    account = MySQLDsn(
        user=consumer_user,
        password=SecretStr("s3cret-pw"),
        host=mysql_db.host,
        port=mysql_db.port,
        database=mysql_db.database,
    )
    conn = db.connect(account)
    try:
        cur = conn.cursor()
        cur.execute("SHOW TABLES")
        tables = {row[0] for row in db.fetchall(cur)}
        assert {
            "audit_data",
            "audit_data_template",
            "audit_offsets",
            "audit_high_water",
            "audit_control",
        } <= tables
        cur.execute("CREATE TABLE audit_data_x LIKE audit_data_template")  # rotation works
        cur.execute("RENAME TABLE audit_data_x TO audit_data_y")
        cur.execute("DROP TABLE audit_data_y")
        with pytest.raises(db.Error):
            cur.execute("SELECT COUNT(*) FROM mysql.user")  # nothing outside the archive
    finally:
        conn.close()


def test_setup_needs_the_account_password_from_the_environment(
    mysql_db: MySQLDsn, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(["setup", f"--archive-dsn={mysql_db}"]) == 2
    assert "AUDITSTREAM_CONSUMER_PASSWORD" in capsys.readouterr().err


def test_print_sql_substitutes_validated_names_only(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["setup", "--print-sql", "--archiver-user=arch_1", "--archiver-host=10.0.%"]) == 0
    out = capsys.readouterr().out
    assert "CREATE USER IF NOT EXISTS 'arch_1'@'10.0.%'" in out
    assert "audit_log_filter_set_user('arch_1@10.0.%', 'log_nothing')" in out
    assert cli(["setup", "--print-sql", "--archiver-user=x'; DROP USER root; --"]) == 2
