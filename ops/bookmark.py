"""``auditstream bookmark show|set``: operators rewind or skip a producer, with an audit trail.

``set`` writes the new position and a row of ``audit_config_history`` (database user, OS user,
old and new position, reason) in ONE transaction, so no change is ever unrecorded.

Traps:
- Stop the server's producer first: a running producer overwrites the bookmark after its next
  acknowledged batch.
- The bookmark read is inclusive and the producer drops the bookmarked event itself: to re-send
  an event, set the position of the event *before* it.
- A moved bookmark keeps the hash chain: the history row is marked pending
  (``audit_config.pending_skip``) and the producer, on its next start, publishes it as a
  ``skip`` link continuing the old chain (``producer.seal``), so ``verify`` reports an
  explained skip, not a new chain. Run ``python -m producer setup`` once after upgrading.
"""

from __future__ import annotations

import getpass
import json
import re
from collections.abc import Sequence
from typing import Any

from pydantic import Field, field_validator

import sql
from auditstream import mysql as db
from auditstream.connections import BookmarkDb, in_archive_database
from auditstream.dsn import DsnText, MySQLDsn
from auditstream.errors import ArchiveError, ConfigError
from auditstream.settings import load
from schemas.mapping import InvalidEventError, parse_timestamp

_POSITION = re.compile(r"(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)#(?P<id>\d+)")


class BookmarkSettings(BookmarkDb):
    """Where the bookmarks are, and the change to make."""

    bookmark_dsn: DsnText = Field(description="mysql://user@host:port[/audit_archive]")
    server_uuid: str | None = Field(None, description="the audited server (set: required)")
    to: str | None = Field(None, description="set: the new position 'YYYY-MM-DD hh:mm:ss#id'")
    reason: str | None = Field(None, description="set: why (kept in audit_config_history)")
    json_output: bool = Field(False, alias="json", description="show: print JSON")

    @field_validator("to")
    @classmethod
    def _position(cls, value: str | None) -> str | None:
        if value is not None:
            match = _POSITION.fullmatch(value.strip())
            if not match:
                raise ValueError("a position looks like '2026-11-01 00:00:00#0' (UTC, then the id)")
            try:
                parse_timestamp(match["ts"])
            except InvalidEventError as exc:
                raise ValueError(str(exc)) from None
        return value

    def dsn(self) -> MySQLDsn:
        """The bookmark store, database ``audit_archive`` unless the DSN names one."""
        dsn = MySQLDsn.parse(self.bookmark_dsn).with_password(
            self.bookmark_password, self.bookmark_password_file
        )
        return in_archive_database(dsn)


def main(argv: Sequence[str]) -> int:
    """Entry point of ``auditstream bookmark show|set``."""
    args = list(argv)
    action = args.pop(0) if args and args[0] in ("show", "set") else None
    if action is None:
        raise ConfigError("usage: auditstream bookmark show|set [flags]")
    s = load(BookmarkSettings, args, prog=f"auditstream bookmark {action}", section="bookmark")
    if action == "show":
        rows = show(s.dsn(), s.server_uuid)
        if s.json_output:
            print(json.dumps(rows, indent=2, default=str))
        else:
            for row in rows:
                print(
                    f"{row['server_uuid']}  {row['ts']}#{row['id']}  (updated {row['updated_at']})"
                )
        return 0
    if not (s.server_uuid and s.to and s.reason):
        raise ConfigError("bookmark set needs --server-uuid, --to and --reason")
    match = _POSITION.fullmatch(s.to.strip())
    assert match is not None  # noqa: S101 - validated above
    old = set_position(s.dsn(), s.server_uuid, match["ts"], int(match["id"]), s.reason)
    print(f"{s.server_uuid}: {old or '(none)'} -> {match['ts']}#{match['id']} (recorded)")
    return 0


def show(dsn: MySQLDsn, server_uuid: str | None) -> list[dict[str, Any]]:
    """Every stored bookmark (or one server's)."""
    statement = "SELECT server_uuid, ts, id, updated_at FROM audit_config"
    params: tuple[str, ...] = ()
    if server_uuid:
        statement += " WHERE server_uuid = %s"
        params = (server_uuid,)
    conn = _connect(dsn)
    try:
        cur = conn.cursor()
        cur.execute(statement + " ORDER BY server_uuid", params)
        keys = ("server_uuid", "ts", "id", "updated_at")
        return [dict(zip(keys, row, strict=True)) for row in db.fetchall(cur)]
    except db.Error as exc:
        raise ArchiveError(f"cannot read bookmarks: {exc}", dsn=str(dsn)) from exc
    finally:
        conn.close()


def set_position(dsn: MySQLDsn, server_uuid: str, ts: str, ident: int, reason: str) -> str | None:
    """Move ``server_uuid``'s bookmark and record the change; return the old position."""
    conn = _connect(dsn)
    try:
        cur = conn.cursor()
        for statement in sql.statements("archive/audit_config_history"):
            cur.execute(statement)
        cur.execute(
            "SELECT ts, id FROM audit_config WHERE server_uuid = %s FOR UPDATE", (server_uuid,)
        )
        old = db.fetchone(cur)
        cur.execute(
            "INSERT INTO audit_config_history (server_uuid, changed_at, db_user, os_user, old_ts, "
            "old_id, new_ts, new_id, reason) "
            "VALUES (%s, UTC_TIMESTAMP(6), CURRENT_USER(), %s, %s, %s, %s, %s, %s)",
            (server_uuid, getpass.getuser(), *(old or (None, None)), ts, ident, reason),
        )
        # The chain stays: the producer publishes the pending skip as its next link (traps).
        cur.execute(
            "INSERT INTO audit_config (server_uuid, ts, id, updated_at, pending_skip) "
            "VALUES (%s, %s, %s, UTC_TIMESTAMP(6), LAST_INSERT_ID()) ON DUPLICATE KEY UPDATE "
            "ts = VALUES(ts), id = VALUES(id), updated_at = VALUES(updated_at), "
            "pending_skip = COALESCE(pending_skip, VALUES(pending_skip))",
            (server_uuid, ts, ident),
        )
        conn.commit()
    except db.Error as exc:
        conn.rollback()
        raise ArchiveError(f"cannot set the bookmark: {exc}", server_uuid=server_uuid) from exc
    finally:
        conn.close()
    return f"{old[0]}#{old[1]}" if old else None


def _connect(dsn: MySQLDsn) -> db.Connection:
    try:
        return db.connect(dsn)
    except db.Error as exc:
        raise ArchiveError(f"cannot connect: {exc}", dsn=str(dsn)) from exc
