"""The archive MySQL for the tests: a private ``mariadbd`` in a temp datadir, or a given server.

Which server a test gets:
1. ``MYSQL_TEST_DSN`` set (e.g. ``mysql://root@127.0.0.1:3306``): that server; every test still
   gets a database of its own.
2. ``--docker``: MySQL 8.4 through testcontainers.
3. Otherwise: ``auditstream.embedded.PrivateMariaDB`` (root without a password, ``local_infile``
   on); ``restart()`` / ``kill()`` keep the datadir (fault tests).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import mysql.connector

from auditstream.dsn import MySQLDsn
from auditstream.embedded import PrivateMariaDB

__all__ = ["ExternalMySQL", "PrivateMariaDB", "create_database", "drop_database"]


@dataclass
class ExternalMySQL:
    """A server someone else runs (``MYSQL_TEST_DSN``, the machine's service, testcontainers)."""

    dsn: MySQLDsn

    def cleanup(self) -> None:
        """Not ours to stop."""


def create_database(server_dsn: MySQLDsn, prefix: str = "t") -> MySQLDsn:
    """Create a fresh, uniquely named database and return a DSN that selects it."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    conn = mysql.connector.connect(**server_dsn.connect_kwargs())
    try:
        conn.cursor().execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
    finally:
        conn.close()
    return server_dsn.with_database(name)


def drop_database(dsn: MySQLDsn) -> None:
    """Drop the database ``dsn`` selects (best effort: the server may be gone)."""
    assert dsn.database and dsn.database.startswith(("t_", "a_"))
    try:
        conn = mysql.connector.connect(**dsn.with_database(None).connect_kwargs())
    except mysql.connector.Error:
        return
    try:
        conn.cursor().execute(f"DROP DATABASE IF EXISTS `{dsn.database}`")
    finally:
        conn.close()
