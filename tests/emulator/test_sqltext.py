"""Lexing just enough SQL: literals, quoted names, comments, variables, statement kinds."""

from __future__ import annotations

import pytest

from emulator.sqltext import (
    SqlSyntaxError,
    quote,
    split_top_level,
    sql_command,
    sysvar_name,
    tokenize,
    unquote,
)


def test_strings_comments_and_variables_are_single_tokens() -> None:
    sql = "SELECT /* audit_log_read() */ 'it''s', \"a\\\"b\", `we``ird`, @@GLOBAL.audit_log_format, @x -- c\n;"
    kinds = [(t.kind, t.text) for t in tokenize(sql)]
    assert kinds == [
        ("word", "SELECT"),
        ("str", "'it''s'"),
        ("punct", ","),
        ("str", '"a\\"b"'),
        ("punct", ","),
        ("quoted", "`we``ird`"),
        ("punct", ","),
        ("sysvar", "@@GLOBAL.audit_log_format"),
        ("punct", ","),
        ("uservar", "@x"),
    ]


def test_unquote_and_quote_round_trip() -> None:
    for text in [
        '{"timestamp": "2020-01-01 00:00:00"}',
        "it's",
        "back\\slash",
        "nl\nnul\0",
        "東京",
    ]:
        (tok,) = tokenize(quote(text))
        assert unquote(tok.text) == text
    assert unquote("_utf8mb4'x\\'y'") == "x'y"
    assert unquote("'50\\%'") == "50\\%"


def test_unterminated_string_is_an_error() -> None:
    with pytest.raises(SqlSyntaxError):
        tokenize("SELECT 'abc")


def test_top_level_split_and_sysvar_names() -> None:
    parts = split_top_level(tokenize("a(1, 2), b, c(d(3, 4))"))
    assert [" ".join(t.text for t in p) for p in parts] == ["a ( 1 , 2 )", "b", "c ( d ( 3 , 4 ) )"]
    assert sysvar_name("@@session.audit_log_read_buffer_size") == (
        "SESSION",
        "audit_log_read_buffer_size",
    )
    assert sysvar_name("@@LOCAL.x") == ("SESSION", "x")
    assert sysvar_name("@@audit_log.read_buffer_size") == (None, "audit_log.read_buffer_size")


@pytest.mark.parametrize(
    ("sql", "command"),
    [
        ("select 1", "select"),
        ("INSERT INTO t VALUES (1)", "insert"),
        ("SET autocommit = 0", "set_option"),
        ("START TRANSACTION", "begin"),
        ("CREATE TABLE t (a INT)", "create_table"),
        ("CREATE DATABASE d", "create_db"),
        ("DROP TEMPORARY TABLE t", "drop_table"),
        ("SHOW GLOBAL VARIABLES LIKE 'x'", "show_variables"),
        ("SHOW WARNINGS", "show_warnings"),
        ("USE d", "change_db"),
    ],
)
def test_sql_command_names(sql: str, command: str) -> None:
    assert sql_command(tokenize(sql)) == command
