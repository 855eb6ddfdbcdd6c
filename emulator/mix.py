"""The building blocks of generated traffic: accounts, hosts, tables, statements, events."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

OVERSIZED_BYTES = 4 * 1024 * 1024 + 4096
USERS = [f"{p}{i}" for p in ("app", "report", "etl", "svc", "dba") for i in range(1, 9)]
HOSTS = [f"10.0.{i}.{j}" for i in range(4) for j in range(1, 17)]
TABLES = [
    ("shop", "orders"),
    ("shop", "customers"),
    ("shop", "items"),
    ("crm", "leads"),
    ("hr", "payroll"),
]
WORDS = [
    "naïve",
    "Zürich",
    "東京",
    "ça",
    "smörgåsbord",
    "₿",
    "😀",
    "O'Brien",
    'quote"d',
    "tab\there",
]


@dataclass
class Conn:
    """One generated client session: its id, account, host, database and statements left."""

    cid: int
    user: str
    host: str
    db: str
    left: int
    attrs: dict[str, str] = field(default_factory=dict)


def statement(
    rng: random.Random, conn: Conn, big: int
) -> tuple[str, str, list[tuple[str, str, str]]]:
    """A statement: ``(sql_command, query, [(db, table, table_access event)])``.

    ``big`` > 0 makes an INSERT whose query alone is that many bytes (an oversized event).
    """
    db, table = rng.choice(TABLES)
    word = rng.choice(WORDS)
    kind = rng.random()
    if big:
        payload = "x" * big
        return (
            "insert",
            f"INSERT INTO {db}.{table} (note) VALUES ('{payload}')",
            [(db, table, "insert")],
        )
    if kind < 0.45:
        q = f"SELECT id, name FROM {db}.{table} WHERE name = '{word}' LIMIT {rng.randint(1, 500)}"
        return "select", q, [(db, table, "read")]
    if kind < 0.65:
        q = f"INSERT INTO {db}.{table} (name, qty) VALUES ('{word}', {rng.randint(1, 99)})"
        return "insert", q, [(db, table, "insert")]
    if kind < 0.75:
        q = f"UPDATE {db}.{table} SET qty = qty + 1 WHERE id = {rng.randint(1, 10**6)}"
        return "update", q, [(db, table, "update")]
    if kind < 0.80:
        return (
            "delete",
            f"DELETE FROM {db}.{table} WHERE id = {rng.randint(1, 10**6)}",
            [(db, table, "delete")],
        )
    if kind < 0.83:
        return "create_user", f"CREATE USER '{conn.user}x'@'%' IDENTIFIED BY <secret>", []
    if kind < 0.86:
        return (
            "select",
            "SELECT " + ", ".join(f"'{rng.choice(WORDS)}'" for _ in range(rng.randint(200, 3000))),
            [],
        )
    if kind < 0.93:
        return "set_option", "SET autocommit = 0", []
    return "commit", "COMMIT", []


def event(ts: str, klass: str, event: str, conn: Conn, **data: Any) -> dict[str, Any]:
    """A client event of ``conn`` with the class-specific ``data`` keys."""
    ev: dict[str, Any] = {
        "timestamp": ts,
        "class": klass,
        "event": event,
        "connection_id": conn.cid,
        "account": {"user": conn.user, "host": "%"},
        "login": {"user": conn.user, "os": "", "ip": conn.host, "proxy": ""},
    }
    ev.update(data)
    return ev


def startup(ts: str) -> dict[str, Any]:
    """The server's ``audit/startup`` event."""
    return {
        "timestamp": ts,
        "class": "audit",
        "event": "startup",
        "connection_id": 0,
        "account": {"user": "skip-grants user", "host": ""},
        "login": {"user": "", "os": "", "ip": "", "proxy": ""},
        "startup_data": {
            "server_id": 1,
            "os_version": "x86_64-Linux",
            "mysql_version": "8.0.40-commercial",
            "args": ["/usr/sbin/mysqld", "--audit-log-format=JSON"],
        },
    }
