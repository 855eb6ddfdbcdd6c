"""The bookmark store: ``audit_config``, one ``{ts, id}`` per audited server.

Step 5 of the producer guarantee writes here, and only after every event up to that position
was acknowledged by the broker. Traps:

- The stored position is the last event *sent*; the next read starts WITH it (the bookmark read
  is inclusive) and the loop drops it.
- ``ts`` is DATETIME holding UTC: the session runs with ``time_zone='+00:00'`` (see
  ``auditstream.mysql.connect``) and the value goes in as the server's own text, so no time-zone
  conversion ever touches it.
- Every error is an ``ArchiveError`` (retriable): the loop stops reading and retries; it never
  reads ahead of a bookmark it could not store.
- One session per instance, not thread-safe: a watcher thread needs a store of its own.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import NamedTuple

import sql
from auditstream.chain import ChainState
from auditstream.dsn import MySQLDsn
from auditstream.errors import ArchiveError
from auditstream.mysql import Connection, Error, connect
from auditstream.position import Position
from auditstream.sqlident import ident
from producer.config import DEFAULT_DATABASE
from schemas.mapping import TIMESTAMP_FORMAT

log = logging.getLogger(__name__)

_SELECT = "SELECT ts, id, chain, chain_seq FROM audit_config WHERE server_uuid = %s"
# VALUES() rather than the row alias: MariaDB 10.11 has no alias syntax.
_UPSERT = (
    "INSERT INTO audit_config (server_uuid, ts, id, chain, chain_seq, updated_at) "
    "VALUES (%s, %s, %s, %s, %s, UTC_TIMESTAMP(6)) "
    "ON DUPLICATE KEY UPDATE ts = VALUES(ts), id = VALUES(id), chain = VALUES(chain), "
    "chain_seq = VALUES(chain_seq), updated_at = VALUES(updated_at)"
)
_ADDS = re.compile(r"ADD COLUMN (\w+)")


class Stored(NamedTuple):
    """A stored bookmark and the hash chain's state at it."""

    bookmark: Position
    chain: ChainState


class BookmarkStore:
    """Read and upsert bookmarks in ``<database>.audit_config``.

    Args:
        dsn: the store's server; its database (default ``audit_archive``) holds the table.
    """

    def __init__(self, dsn: MySQLDsn) -> None:
        self._database = dsn.database or DEFAULT_DATABASE
        self._dsn = dsn.with_database(self._database)
        self._conn: Connection | None = None

    @property
    def database(self) -> str:
        """The database holding ``audit_config``."""
        return self._database

    def setup(self) -> None:
        """Create the database (when it is the default one) and ``audit_config``; idempotent.

        Raises:
            ArchiveError: the server refused or is unreachable.
        """
        try:
            conn = connect(self._dsn.with_database(None))
            try:
                cur = conn.cursor()
                if self._database == DEFAULT_DATABASE:
                    for statement in sql.statements("archive/database"):
                        cur.execute(statement)
                cur.execute(f"USE {ident(self._database)}")
                for statement in sql.statements("archive/audit_config"):
                    cur.execute(statement)
                cur.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = %s AND table_name = 'audit_config'",
                    (self._database,),
                )
                have = {str(name).lower() for (name,) in cur.fetchall()}
                for statement in sql.statements("archive/audit_config_upgrade"):
                    column = _ADDS.search(statement)
                    if column and column[1] not in have:
                        cur.execute(statement)
                conn.commit()
            finally:
                conn.close()
        except Error as exc:
            raise ArchiveError(
                f"cannot create audit_config: {exc}", database=self._database
            ) from exc

    def load(self, server_uuid: str) -> Position | None:
        """The stored bookmark of ``server_uuid``, or None.

        Raises:
            ArchiveError: the store is unreachable or the table is missing (run ``setup``).
        """
        stored = self.load_state(server_uuid)
        return stored.bookmark if stored is not None else None

    def load_state(self, server_uuid: str) -> Stored | None:
        """The stored bookmark and hash-chain state of ``server_uuid``, or None.

        A row without a chain (written before chaining) continues from the genesis value.

        Raises:
            ArchiveError: the store is unreachable or the table is missing (run ``setup``).
        """
        try:
            cur = self._session().cursor()
            cur.execute(_SELECT, (server_uuid,))
            row = cur.fetchone()
            cur.close()
            self._session().commit()
        except Error as exc:
            self._drop()
            raise ArchiveError(f"cannot read the bookmark: {exc}", server_uuid=server_uuid) from exc
        if row is None:
            return None
        ts, ident_, chain, seq = row
        assert isinstance(ts, datetime)  # noqa: S101 - DATETIME column
        # Naive and UTC already: formatting it directly avoids any local-time conversion.
        position = Position(ts.strftime(TIMESTAMP_FORMAT), int(str(ident_)))
        state = ChainState.start(server_uuid)
        if chain is not None and seq is not None:
            state = ChainState(server_uuid, str(chain), int(str(seq)), (position.ts, position.id))
        return Stored(position, state)

    def store(self, server_uuid: str, position: Position, chain: ChainState | None = None) -> None:
        """Upsert the bookmark of ``server_uuid`` (and its chain state) and commit.

        Raises:
            ArchiveError: not stored (the caller retries; the old bookmark stays valid).
        """
        try:
            conn = self._session()
            cur = conn.cursor()
            link = (chain.hash, chain.seq) if chain is not None else (None, None)
            cur.execute(_UPSERT, (server_uuid, position.ts, position.id, *link))
            cur.close()
            conn.commit()
        except Error as exc:
            self._drop()
            raise ArchiveError(
                f"cannot store the bookmark: {exc}",
                server_uuid=server_uuid,
                bookmark=position.text(),
            ) from exc

    def close(self) -> None:
        """Close the session (best effort)."""
        self._drop()

    def _session(self) -> Connection:
        if self._conn is None:
            self._conn = connect(self._dsn)
        return self._conn

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Error:
                log.debug("closing the bookmark session failed", exc_info=True)
