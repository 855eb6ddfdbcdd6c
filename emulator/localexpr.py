"""Finding and rendering what the emulator computes itself inside a statement."""

from __future__ import annotations

from typing import Any

from emulator import functions
from emulator.proxy import BINARY_CHARSET, Column
from emulator.sqltext import Token, closing_paren, quote, sysvar_name, unquote

CLAUSES = {"FROM", "WHERE", "GROUP", "HAVING", "ORDER", "UNION", "INTO", "WINDOW", "FOR", "LIMIT"}
LOCAL_FUNCS = functions.AUDIT_FUNCTIONS | functions.SESSION_FUNCTIONS


def reads_diagnostics(tokens: list[Token]) -> bool:
    """Whether the statement reads the diagnostics area (and so must not clear it)."""
    words = [t.upper for t in tokens[:4]]
    if words[:1] == ["SHOW"] and ("WARNINGS" in words or "ERRORS" in words):
        return True
    return (
        len(tokens) == 2
        and words[0] == "SELECT"
        and tokens[1].kind == "sysvar"
        and sysvar_name(tokens[1].text)[1] in ("warning_count", "error_count")
    )


def top_level(tokens: list[Token]) -> list[Token]:
    """The tokens outside parentheses."""
    depth, out = 0, []
    for t in tokens:
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
        elif depth == 0:
            out.append(t)
    return out


def local_spans(tokens: list[Token]) -> list[tuple[int, int]]:
    """Token spans ``(first, last)`` of audit functions and owned ``@@variables``."""
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        after_dot = i > 0 and tokens[i - 1].text == "."
        if (
            t.kind == "word"
            and not after_dot
            and t.text.lower() in LOCAL_FUNCS
            and i + 1 < len(tokens)
            and tokens[i + 1].text == "("
        ):
            j = closing_paren(tokens, i + 1)
            if j < 0:
                break
            spans.append((i, j))
            i = j + 1
            continue
        if t.kind == "sysvar":
            name = sysvar_name(t.text)[1]
            if name in functions.OWN_SYSVARS or name.startswith("audit_log"):
                spans.append((i, i))
        i += 1
    return spans


def mentions_filter_tables(tokens: list[Token]) -> bool:
    """Whether the statement names ``mysql.audit_log_filter`` or ``mysql.audit_log_user``."""
    for i in range(len(tokens) - 2):
        if (
            tokens[i].text.strip("`").lower() == "mysql"
            and tokens[i + 1].text == "."
            and tokens[i + 2].text.strip("`").lower() in ("audit_log_filter", "audit_log_user")
        ):
            return True
    return False


def column_name(tok: Token) -> str:
    """An alias token's text without quotes."""
    if tok.kind == "str":
        return unquote(tok.text)
    return tok.text.strip("`").replace("``", "`")


def column_for(name: str, value: Any, tok: Token) -> Column:
    """The column a locally computed value is sent in (UDF strings are binary)."""
    if isinstance(value, bytes):
        big = tok.text.lower() == "audit_log_read"
        return Column(name, type=251 if big else 253, charset=BINARY_CHARSET, flags=128)
    if isinstance(value, int):
        return Column(name, type=8, charset=BINARY_CHARSET, flags=128 | 32768, length=21)
    return Column(name, type=253, charset=255)


def encode_value(value: Any) -> bytes | None:
    """A value in the text protocol."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def literal(value: Any) -> str:
    """A value as an SQL literal, for substitution into a proxied statement."""
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    return quote(value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value))


def syntax_error(sql: str) -> str:
    """The server's 1064 message."""
    return (
        "You have an error in your SQL syntax; check the manual that corresponds to your "
        f"MySQL server version for the right syntax to use near '{sql[:80]}' at line 1"
    )


def bare_select_items(tokens: list[Token]) -> set[tuple[int, int]]:
    """Spans of a SELECT list's items that have no alias (the server names them by text)."""
    if not tokens or tokens[0].upper != "SELECT":
        return set()
    out, depth, start = set(), 0, 1
    for k in range(1, len(tokens) + 1):
        tok = tokens[k] if k < len(tokens) else None
        if tok is not None and tok.text == "(":
            depth += 1
        elif tok is not None and tok.text == ")":
            depth -= 1
        end_of_item = tok is None or (
            depth == 0 and (tok.text == "," or (tok.kind == "word" and tok.upper in CLAUSES))
        )
        if end_of_item:
            out.add((start, k - 1))
            if tok is None or tok.text != ",":
                break
            start = k + 1
    return out
