"""Audit filters: definitions, assignments, evaluation and persistence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator.errors import UdfError
from emulator.filters import FilterStore, filter_function, logs, split_account


@pytest.mark.parametrize(
    ("rule", "klass", "event", "expected"),
    [
        ({"filter": {"log": True}}, "general", "status", True),
        ({"filter": {"log": False}}, "general", "status", False),
        ({"filter": {}}, "connection", "connect", True),
        ({"filter": {"class": {"name": "connection"}}}, "connection", "connect", True),
        ({"filter": {"class": {"name": "connection"}}}, "general", "status", False),
        (
            {"filter": {"class": [{"name": "table_access", "event": {"name": ["insert"]}}]}},
            "table_access",
            "insert",
            True,
        ),
        (
            {"filter": {"class": [{"name": "table_access", "event": {"name": ["insert"]}}]}},
            "table_access",
            "read",
            False,
        ),
        (
            {"filter": {"log": True, "class": {"name": "general", "log": False}}},
            "general",
            "status",
            False,
        ),
        (
            {"filter": {"log": True, "class": {"name": "general", "log": False}}},
            "connection",
            "connect",
            True,
        ),
    ],
)
def test_rules(rule, klass: str, event: str, expected: bool) -> None:
    assert logs(rule, klass, event) is expected


def test_no_filter_logs_nothing() -> None:
    assert logs(None, "general", "status") is False


def test_assignments_persist_and_fall_back_to_the_default_account(tmp_path: Path) -> None:
    store = FilterStore(tmp_path)
    assert store.for_account("app") == (0, None)
    assert store.set_filter("log_all", '{"filter": {"log": true}}') == "OK"
    assert store.set_filter("log_nothing", '{"filter": {"log": false}}') == "OK"
    assert store.set_user("%", "log_all") == "OK"
    assert store.set_user("archiver@%", "log_nothing") == "OK"
    again = FilterStore(tmp_path)
    assert again.for_account("archiver") == (2, {"filter": {"log": False}})
    assert again.for_account("app") == (1, {"filter": {"log": True}})
    assert again.remove_filter("log_all") == "OK"
    assert again.for_account("app") == (0, None)
    assert [r["FILTERNAME"] for r in again.rows_user()] == ["log_nothing"]


def test_errors_are_strings_or_udf_errors(tmp_path: Path) -> None:
    store = FilterStore(tmp_path)
    assert store.set_filter("f", "{not json").startswith("ERROR:")
    assert store.set_filter("f", json.dumps({"nofilter": 1})).startswith("ERROR:")
    assert store.set_user("u@%", "missing").startswith("ERROR:")
    with pytest.raises(UdfError) as info:
        filter_function(store, "audit_log_filter_set_filter", ["only-one"])
    assert info.value.errno == 1123
    assert split_account("'u'@'h'") == ("u", "h") and split_account("%") == ("%", "")
