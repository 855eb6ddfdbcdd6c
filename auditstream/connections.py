"""The MySQL servers a command talks to, as groups of settings each command's settings compose.

Each group is the same three fields a command needs for one server: ``<role>_dsn``,
``<role>_password`` (``AUDITSTREAM_<ROLE>_PASSWORD``; refused as a flag by
``auditstream.settings``) and ``<role>_password_file``, and ``<role>_or_none()`` giving the DSN
with its password filled in. A command's settings inherit the groups it needs
(``class ReconcileSettings(SourceDb, ArchiveDb, KafkaAuthSettings)``), like
``auditstream.kafkaauth.KafkaAuthSettings`` for Kafka's TLS and SASL.

Trap: these are mixins, not nested models, on purpose: a nested model would rename the flags
(``--source.dsn``) and variables (``AUDITSTREAM_SOURCE__DSN``) that operators' scripts use.
What a missing DSN means (an error, or a store left out) and the default database stay with
each command.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from auditstream.dsn import DsnText, MySQLDsn
from auditstream.settings import ServiceSettings

DEFAULT_DATABASE = "audit_archive"
_FILE = "file holding the password"


def resolve(
    dsn: str | None, password: SecretStr | None, password_file: Path | None
) -> MySQLDsn | None:
    """``dsn`` parsed, with the password from the environment or the file; None for None."""
    if dsn is None:
        return None
    return MySQLDsn.parse(dsn).with_password(password, password_file)


def in_archive_database(dsn: MySQLDsn) -> MySQLDsn:
    """``dsn``, with database ``audit_archive`` unless it names one."""
    return dsn if dsn.database else dsn.with_database(DEFAULT_DATABASE)


class SourceDb(ServiceSettings):
    """The audited server (an AUDIT_ADMIN account, or an administrator for ``setup``)."""

    source_dsn: DsnText | None = Field(
        None, description="the audited server: mysql://user@host:port (password: env/file)"
    )
    source_password: SecretStr | None = Field(None, description="AUDITSTREAM_SOURCE_PASSWORD")
    source_password_file: Path | None = Field(None, description=_FILE)

    def source_or_none(self) -> MySQLDsn | None:
        """The audited server's DSN with its password, or None without ``--source-dsn``."""
        return resolve(self.source_dsn, self.source_password, self.source_password_file)


class ArchiveDb(ServiceSettings):
    """The archive database (``audit_data``, offsets, ledger)."""

    archive_dsn: DsnText | None = Field(
        None,
        description="archive DB: mysql://user@host:port/audit_archive (password: env/file)",
    )
    archive_password: SecretStr | None = Field(None, description="AUDITSTREAM_ARCHIVE_PASSWORD")
    archive_password_file: Path | None = Field(None, description=_FILE)

    def archive_or_none(self) -> MySQLDsn | None:
        """The archive's DSN with its password, or None without ``--archive-dsn``."""
        return resolve(self.archive_dsn, self.archive_password, self.archive_password_file)


class BookmarkDb(ServiceSettings):
    """The producers' bookmark store (``audit_config``)."""

    bookmark_dsn: DsnText | None = Field(
        None, description="bookmark store mysql://user@host:port[/db]"
    )
    bookmark_password: SecretStr | None = Field(None, description="AUDITSTREAM_BOOKMARK_PASSWORD")
    bookmark_password_file: Path | None = Field(None, description=_FILE)

    def bookmark_or_none(self) -> MySQLDsn | None:
        """The bookmark store's DSN with its password, or None without ``--bookmark-dsn``."""
        return resolve(self.bookmark_dsn, self.bookmark_password, self.bookmark_password_file)
