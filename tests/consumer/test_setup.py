"""``consumer setup``: every archive table, idempotent, and the add-columns-only migration."""

from __future__ import annotations

from auditstream.dsn import MySQLDsn
from consumer.setup import setup
from tests.consumer.conftest import query


def test_setup_creates_every_table_and_is_idempotent(mysql_db: MySQLDsn) -> None:
    assert setup(mysql_db) == []
    assert setup(mysql_db) == []
    tables = {row[0] for row in query(mysql_db, "SHOW TABLES")}
    assert {
        "audit_data_template",
        "audit_data",
        "audit_offsets",
        "audit_high_water",
        "audit_control",
    } <= tables
    keys = query(
        mysql_db,
        "SELECT column_name FROM information_schema.key_column_usage WHERE table_schema = "
        "DATABASE() AND table_name = 'audit_data' AND constraint_name = 'PRIMARY' "
        "ORDER BY ordinal_position",
    )
    assert [k[0] for k in keys] == ["server_uuid", "ts", "id"]
    types = dict(
        query(
            mysql_db,
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND table_name = 'audit_data'",
        )
    )
    assert types["ts"] == "datetime"
    assert types["query"] in ("mediumtext", "longtext")
    assert types["raw"] in ("mediumtext", "longtext")


def test_setup_creates_the_database_the_dsn_names(mysql_db: MySQLDsn) -> None:
    other = mysql_db.with_database(mysql_db.database + "_x")  # type: ignore[operator]
    try:
        setup(other)
        assert ("audit_data",) in query(other, "SHOW TABLES")
    finally:
        query(mysql_db, f"DROP DATABASE IF EXISTS `{other.database}`")


def test_migration_adds_missing_columns_and_keeps_rows(mysql_db: MySQLDsn) -> None:
    setup(mysql_db)
    # An archive created by an older template: two columns missing from both tables.
    for table in ("audit_data_template", "audit_data"):
        query(mysql_db, f"ALTER TABLE {table} DROP COLUMN kafka_offset, DROP COLUMN message_map")
    query(mysql_db, "ALTER TABLE audit_control DROP COLUMN chain, DROP COLUMN chain_seq")
    query(
        mysql_db,
        "INSERT INTO audit_data (server_uuid, ts, id, class, event, raw) "
        "VALUES ('s', '2024-01-01 00:00:00', 1, 'general', 'status', '{}')",
    )
    added = setup(mysql_db)
    assert sorted(added) == [
        "audit_control.chain",
        "audit_control.chain_seq",
        "audit_data.kafka_offset",
        "audit_data.message_map",
        "audit_data_template.kafka_offset",
        "audit_data_template.message_map",
    ]
    columns = [
        row[0]
        for row in query(
            mysql_db,
            "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() "
            "AND table_name = 'audit_data' ORDER BY ordinal_position",
        )
    ]
    template = [
        row[0]
        for row in query(
            mysql_db,
            "SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() "
            "AND table_name = 'audit_data_template' ORDER BY ordinal_position",
        )
    ]
    assert columns == template  # same order: rotation creates LIKE the template
    assert columns.index("message_map") == columns.index("message") + 1
    assert query(mysql_db, "SELECT id, kafka_offset FROM audit_data") == [(1, None)]
    assert setup(mysql_db) == []
