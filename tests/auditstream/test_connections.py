from pathlib import Path

from pydantic import SecretStr

from auditstream.connections import ArchiveDb, BookmarkDb, SourceDb, in_archive_database, resolve
from auditstream.dsn import MySQLDsn


class Both(SourceDb, ArchiveDb, BookmarkDb):
    pass


def test_each_group_fills_in_its_own_password(tmp_path: Path) -> None:
    pw_file = tmp_path / "archive.pw"
    pw_file.write_text("from-file\n")
    s = Both(
        source_dsn="mysql://a@src:3306",
        source_password=SecretStr("from-env"),
        archive_dsn="mysql://b@arch:3307/db",
        archive_password_file=pw_file,
    )
    source, archive = s.source_or_none(), s.archive_or_none()
    assert source is not None and source.password is not None
    assert source.password.get_secret_value() == "from-env" and source.host == "src"
    assert archive is not None and archive.password is not None
    assert archive.password.get_secret_value() == "from-file" and archive.database == "db"
    assert s.bookmark_or_none() is None


def test_flags_keep_their_flat_names() -> None:
    names = set(Both.model_fields)
    for role in ("source", "archive", "bookmark"):
        assert {f"{role}_dsn", f"{role}_password", f"{role}_password_file"} <= names


def test_a_password_in_the_dsn_wins_and_the_archive_database_defaults() -> None:
    dsn = resolve("mysql://u:inline@h:1", SecretStr("other"), None)
    assert dsn is not None and dsn.password is not None
    assert dsn.password.get_secret_value() == "inline"
    assert resolve(None, SecretStr("x"), None) is None
    assert in_archive_database(MySQLDsn.parse("mysql://u@h:1")).database == "audit_archive"
    assert in_archive_database(MySQLDsn.parse("mysql://u@h:1/mine")).database == "mine"
