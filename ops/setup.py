"""``auditstream setup``: everything an operator prepares once, printed or applied.

1. The archive: the ``audit_archive`` tables (``consumer setup``) and the consumers' account
   with least privileges (``sql/setup/consumer_account.sql``).
2. The audited server: the archiver account, its grants, and the ``log_all`` / ``log_nothing``
   filters (``sql/source/*.sql``) — without ``log_nothing`` the archiver audits itself.
3. The bookmark store (``audit_config``), by default on the audited server.

``--print-sql`` prints the statements and applies nothing. Account names are validated and
quoted; passwords are bound as parameters and never printed.

Trap: filter assignments apply to new sessions only; restart the producer after changing them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from pydantic import Field, SecretStr, field_validator

import sql
from auditstream import mysql as db
from auditstream.connections import ArchiveDb, SourceDb
from auditstream.dsn import DsnText, MySQLDsn
from auditstream.errors import ConfigError, SourceError
from auditstream.settings import load
from auditstream.sqlident import ident

log = logging.getLogger(__name__)

_USER = re.compile(r"[A-Za-z0-9_]{1,32}")
_HOST = re.compile(r"[A-Za-z0-9_.%:-]{1,255}")
PASSWORD_PLACEHOLDER = "'change-me'"  # noqa: S105 - the text replaced by a bound parameter


class SetupSettings(ArchiveDb, SourceDb):
    """What to prepare, and as whom (administrator DSNs; passwords from env or files)."""

    archive_dsn: DsnText | None = Field(
        None, description="archive admin: mysql://root@host:port/audit_archive"
    )
    source_dsn: DsnText | None = Field(
        None, description="audited server admin: mysql://admin@host:port"
    )
    archiver_user: str = Field("audituser", description="the producer's account on the source")
    archiver_host: str = "%"
    archiver_password: SecretStr | None = Field(None, description="AUDITSTREAM_ARCHIVER_PASSWORD")
    consumer_user: str = Field("auditstream", description="the consumers' account on the archive")
    consumer_host: str = "%"
    consumer_password: SecretStr | None = Field(None, description="AUDITSTREAM_CONSUMER_PASSWORD")
    print_sql: bool = Field(False, description="print the statements; apply nothing")

    @field_validator("archiver_user", "consumer_user")
    @classmethod
    def _user(cls, value: str) -> str:
        if not _USER.fullmatch(value):
            raise ValueError("letters, digits and underscore, at most 32")
        return value

    @field_validator("archiver_host", "consumer_host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not _HOST.fullmatch(value):
            raise ValueError("a host name, address or pattern (letters, digits, . % : - _)")
        return value


def main(argv: Sequence[str]) -> int:
    """Entry point of ``auditstream setup``."""
    s = load(SetupSettings, argv, prog="auditstream setup", section="setup")
    archive_db = MySQLDsn.parse(s.archive_dsn).database if s.archive_dsn else None
    consumer = [
        statement.replace("ON audit_archive.*", f"ON {ident(archive_db or 'audit_archive')}.*")
        for statement in source_statements(
            "setup/consumer_account", "auditstream", s.consumer_user, s.consumer_host
        )
    ]
    archiver = [
        statement
        for name in ("source/account", "source/grants", "source/filters")
        for statement in source_statements(name, "audituser", s.archiver_user, s.archiver_host)
    ]
    if s.print_sql:
        print("-- on the archive server\n" + ";\n".join(consumer) + ";")
        print("-- on the audited server\n" + ";\n".join(archiver) + ";")
        return 0
    if not s.archive_dsn and not s.source_dsn:
        raise ConfigError("nothing to do: give --archive-dsn and/or --source-dsn (or --print-sql)")
    archive, source = s.archive_or_none(), s.source_or_none()
    if archive is not None:
        from consumer.setup import setup as archive_setup

        added = archive_setup(archive)
        apply(archive, consumer, _password(s.consumer_password, "CONSUMER"))
        log.info("archive ready", extra={"ctx": {"archive": str(archive), "added": added}})
    if source is not None:
        from producer.bookmark import BookmarkStore

        BookmarkStore(source.with_database("audit_archive")).setup()
        apply(source, archiver, _password(s.archiver_password, "ARCHIVER"))
        log.info("audited server ready", extra={"ctx": {"source": str(source)}})
    return 0


def source_statements(name: str, placeholder: str, user: str, host: str) -> list[str]:
    """The statements of ``sql/<name>.sql`` for the validated account ``user@host``."""
    out = []
    for statement in sql.statements(name):
        statement = statement.replace(f"'{placeholder}'@'%'", f"'{user}'@'{host}'")
        statement = statement.replace(f"'{placeholder}@%'", f"'{user}@{host}'")
        out.append(statement)
    return out


def apply(dsn: MySQLDsn, statements: list[str], password: SecretStr) -> None:
    """Run ``statements``; the placeholder password is replaced by a bound parameter."""
    try:
        conn = db.connect(dsn, autocommit=True)
    except db.Error as exc:
        raise SourceError(f"cannot connect: {exc}", dsn=str(dsn)) from exc
    try:
        cur = conn.cursor()
        for statement in statements:
            if PASSWORD_PLACEHOLDER in statement:
                cur.execute(
                    statement.replace(PASSWORD_PLACEHOLDER, "%s"), (password.get_secret_value(),)
                )
            else:
                cur.execute(statement)
            if cur.description is not None:  # SELECT audit_log_filter_...() returns a row
                cur.fetchall()
    except db.Error as exc:
        raise SourceError(f"setup statement failed: {exc.msg}", dsn=str(dsn)) from exc
    finally:
        conn.close()


def _password(value: SecretStr | None, who: str) -> SecretStr:
    if value is None:
        raise ConfigError(f"set AUDITSTREAM_{who}_PASSWORD for the account setup creates")
    return value
