"""Flavor detection from the server's variables, and what counts as a filter that logs nothing.

The emulator covers the Oracle plugin and Percona end to end (test_e2e); the MySQL 9.x and
Percona 8.4 components exist only as variable names here, so they are checked on those.
"""

from __future__ import annotations

import pytest

from auditstream.errors import SourceConfigError
from producer.flavor import detect, logs_nothing


@pytest.mark.parametrize(
    ("variables", "name", "statement"),
    [
        (
            {"audit_log_format": "JSON", "audit_log_read_buffer_size": "32768"},
            "oracle",
            "SET SESSION audit_log_read_buffer_size = %s",
        ),
        (
            {"audit_log.format": "JSON", "audit_log.read_buffer_size": "32768"},
            "oracle-component",
            "SET SESSION audit_log.read_buffer_size = %s",
        ),
        (
            {"audit_log_filter_format": "JSON", "audit_log_filter_read_buffer_size": "32768"},
            "percona",
            "SET GLOBAL audit_log_filter_read_buffer_size = %s",
        ),
        (
            {"audit_log_filter.format": "json", "audit_log_filter.read_buffer_size": "32768"},
            "percona-component",
            "SET GLOBAL audit_log_filter.read_buffer_size = %s",
        ),
    ],
)
def test_flavors_are_told_apart_by_their_variables(
    variables: dict[str, str], name: str, statement: str
) -> None:
    flavor = detect(variables)
    assert flavor.name == name
    assert flavor.buffer_statement() == statement
    assert flavor.percona == name.startswith("percona")


def test_a_log_in_another_format_or_no_audit_log_is_refused() -> None:
    with pytest.raises(SourceConfigError, match="format is 'NEW'"):
        detect({"audit_log_format": "NEW", "audit_log_read_buffer_size": "32768"})
    with pytest.raises(SourceConfigError, match="no audit log on this server"):
        detect({"version": "8.0.40"})


@pytest.mark.parametrize(
    ("definition", "silent"),
    [
        ('{ "filter": { "log": false } }', True),
        ('{"filter": {"log": false}}', True),
        ('{ "filter": { "log": true } }', False),
        ('{ "filter": { } }', False),
        ('{ "filter": { "log": false, "class": [{ "name": "connection", "log": true }] } }', False),
        ("not json", False),
        (None, False),
    ],
)
def test_only_a_filter_that_certainly_logs_nothing_passes_the_guard(
    definition: str | None, silent: bool
) -> None:
    assert logs_nothing(definition) is silent


def test_a_session_lost_during_the_self_audit_check_is_retriable(mysql_db) -> None:
    """A source restart at that moment must not stop a following producer for good."""
    from auditstream import mysql
    from auditstream.errors import SourceUnavailable
    from producer.flavor import guard_self_audit

    conn = mysql.connect(mysql_db)
    conn.close()
    with pytest.raises(SourceUnavailable) as err:
        guard_self_audit(conn, allow=False)
    assert err.value.retriable


# The flavor/format matrix of docs/producer.md: (format variable, buffer variable, flavor).
SERVERS = [
    ("audit_log_format", "audit_log_read_buffer_size", "oracle"),  # Oracle 8.0 / 8.4 plugin
    ("audit_log.format", "audit_log.read_buffer_size", "oracle-component"),  # MySQL 9.x
    ("audit_log_filter_format", "audit_log_filter_read_buffer_size", "percona"),  # 8.0 plugin
    ("audit_log_filter.format", "audit_log_filter.read_buffer_size", "percona-component"),
]
READ = {
    "oracle": {"JSON"},
    "oracle-component": {"JSON"},
    "percona": {"JSON", "JSONL"},
    "percona-component": {"JSON", "JSONL"},
}


@pytest.mark.parametrize(("format_var", "buffer_var", "name"), SERVERS)
@pytest.mark.parametrize("fmt", ["JSON", "JSONL", "json", "jsonl", "NEW", "OLD", ""])
def test_the_flavor_format_matrix(format_var: str, buffer_var: str, name: str, fmt: str) -> None:
    found = {buffer_var: "32768", format_var: fmt}
    if fmt.upper() in READ[name]:
        assert detect(found).name == name
        return
    with pytest.raises(SourceConfigError) as err:
        detect(found, server="db1")
    message = err.value.message
    assert f"format is {fmt or 'unknown'!r}" in message
    assert ("(XML)" in message) is (fmt in ("NEW", "OLD"))
    if name.startswith("percona"):
        assert f"{format_var}=JSONL or {format_var}=JSON" in message
        assert "rename audit_log_filter" in message
    else:
        assert message.endswith(f"needs {format_var}=JSON")
    assert err.value.context["flavor"] == name
