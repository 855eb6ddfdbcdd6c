"""Just enough SQL lexing to find what the emulator answers itself; the rest is proxied.

The emulator does not parse SQL: it tokenises a statement (strings, quoted names, comments and
``@@variables`` are single tokens) to spot the audit functions, its own system variables and
the statements it owns (``SHOW WARNINGS``, ``SET audit_log_read_buffer_size`` ...).

Trap: MySQL string literals use backslash escapes unless ``NO_BACKSLASH_ESCAPES`` is set;
clients (mysql-connector-python) escape that way, so ``unquote`` always honours them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>--(?:[ \t][^\n]*)?(?:\n|$)|\#[^\n]*|/\*.*?(?:\*/|$))
  | (?P<str>(?:_[A-Za-z0-9]+\s*|[nN](?='))?'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
  | (?P<quoted>`(?:[^`]|``)*`)
  | (?P<sysvar>@@(?:(?:global|session|local|persist)\.)?[A-Za-z_][A-Za-z0-9_.$]*)
  | (?P<uservar>@(?:[A-Za-z0-9_.$]+|'(?:[^'\\]|\\.)*'|`[^`]*`))
  | (?P<num>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)
  | (?P<word>[A-Za-z_$][A-Za-z0-9_$]*)
  | (?P<punct>.)
    """,
    re.S | re.X | re.I,
)
_ESCAPES = {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a"}


@dataclass(frozen=True)
class Token:
    """One token: its kind, text and span in the statement."""

    kind: str
    text: str
    start: int
    end: int

    @property
    def upper(self) -> str:
        """The text in upper case (keywords, function names)."""
        return self.text.upper()


class SqlSyntaxError(ValueError):
    """The statement cannot be tokenised (an unterminated string)."""


def tokenize(sql: str) -> list[Token]:
    """The statement's tokens without whitespace and comments.

    Raises:
        SqlSyntaxError: an unterminated quote.
    """
    out: list[Token] = []
    for m in _TOKEN.finditer(sql):
        kind = m.lastgroup or "punct"
        if kind in ("ws", "comment"):
            continue
        text = m.group()
        if kind == "punct" and text in "'\"`":
            raise SqlSyntaxError("unterminated quoted string")
        out.append(Token(kind, text, m.start(), m.end()))
    while out and out[-1].text == ";":
        out.pop()
    return out


def unquote(text: str) -> str:
    """The value of a string literal token (charset introducer and escapes removed)."""
    if text[0] not in "'\"":
        text = text[text.index("'") :]
    quote, body = text[0], text[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt if nxt in "%_" else nxt))
            i += 2
        elif ch == quote and i + 1 < len(body) and body[i + 1] == quote:
            out.append(quote)
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def quote(value: str) -> str:
    """A single-quoted SQL literal for ``value`` (for substituting into proxied statements)."""
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("\0", "\\0")
    return "'" + escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\x1a", "\\Z") + "'"


def split_top_level(tokens: list[Token], sep: str = ",") -> list[list[Token]]:
    """Split tokens at ``sep`` outside parentheses."""
    parts: list[list[Token]] = [[]]
    depth = 0
    for tok in tokens:
        if tok.text == "(":
            depth += 1
        elif tok.text == ")":
            depth -= 1
        if tok.text == sep and depth == 0:
            parts.append([])
        else:
            parts[-1].append(tok)
    return parts


def closing_paren(tokens: list[Token], open_at: int) -> int:
    """Index of the ``)`` matching the ``(`` at ``open_at`` (or -1)."""
    depth = 0
    for i in range(open_at, len(tokens)):
        if tokens[i].text == "(":
            depth += 1
        elif tokens[i].text == ")":
            depth -= 1
            if depth == 0:
                return i
    return -1


def sysvar_name(text: str) -> tuple[str | None, str]:
    """``@@global.x`` → (``GLOBAL``, ``x``); ``@@x`` → (None, ``x``); names lower-cased."""
    body = text[2:]
    scope, dot, rest = body.partition(".")
    if dot and scope.lower() in ("global", "session", "local", "persist"):
        return scope.upper().replace("LOCAL", "SESSION"), rest.lower()
    return None, body.lower()


def sql_command(tokens: list[Token]) -> str:
    """The ``sql_command`` an audit event reports for a statement (``select``, ``insert`` ...)."""
    words = [t.upper for t in tokens[:4] if t.kind == "word"]
    if not words:
        return "error"
    first = words[0]
    second = words[1] if len(words) > 1 else ""
    simple = {
        "SELECT": "select",
        "INSERT": "insert",
        "UPDATE": "update",
        "DELETE": "delete",
        "REPLACE": "replace",
        "SET": "set_option",
        "BEGIN": "begin",
        "COMMIT": "commit",
        "ROLLBACK": "rollback",
        "USE": "change_db",
        "CALL": "call_procedure",
        "RENAME": "rename_table",
        "TRUNCATE": "truncate",
        "GRANT": "grant",
        "REVOKE": "revoke",
        "DO": "do",
    }
    if first in simple:
        return simple[first]
    if first == "START" and second == "TRANSACTION":
        return "begin"
    if first in ("CREATE", "DROP", "ALTER"):
        kinds = [w for w in words[1:] if w not in ("TEMPORARY", "OR", "REPLACE", "UNIQUE")]
        kind = kinds[0] if kinds else ""
        obj = {"DATABASE": "db", "SCHEMA": "db"}.get(kind, kind.lower())
        return f"{first.lower()}_{obj}"
    if first == "SHOW":
        rest = [w for w in words[1:] if w not in ("GLOBAL", "SESSION", "FULL")]
        return "show_" + (rest[0].lower() if rest else "status")
    return first.lower()
