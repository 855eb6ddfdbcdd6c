"""``auditstream bookmark``: an operator's rewind lands in audit_config and in the trail, together."""

from __future__ import annotations

import json

import pytest

from auditstream import mysql as db
from auditstream.dsn import MySQLDsn
from auditstream.position import Position
from ops.cli import main as cli
from producer.bookmark import BookmarkStore

UUID = "6c1f8b5e-0d1c-11ef-9f1a-0242ac120002"


def rows(dsn: MySQLDsn, statement: str) -> list[tuple[object, ...]]:
    conn = db.connect(dsn)
    try:
        cur = conn.cursor()
        cur.execute(statement)
        return db.fetchall(cur)
    finally:
        conn.close()


def test_set_moves_the_bookmark_and_records_who_why_and_from_where(
    mysql_db: MySQLDsn, capsys: pytest.CaptureFixture[str]
) -> None:
    store = BookmarkStore(mysql_db)
    store.setup()
    store.store(UUID, Position("2026-11-01 10:00:00", 5))
    store.close()

    argv = ["bookmark", "set", f"--bookmark-dsn={mysql_db}", f"--server-uuid={UUID}"]
    assert (
        cli([*argv, "--to=2026-11-01 09:00:00#0", "--reason=re-send the 09:00 hour to the SIEM"])
        == 0
    )
    assert "2026-11-01 10:00:00#5 -> 2026-11-01 09:00:00#0" in capsys.readouterr().out

    reread = BookmarkStore(mysql_db)
    assert reread.load(UUID) == Position("2026-11-01 09:00:00", 0)
    reread.close()
    trail = rows(
        mysql_db, "SELECT old_ts, old_id, new_ts, new_id, reason, db_user FROM audit_config_history"
    )
    assert len(trail) == 1
    old_ts, old_id, new_ts, new_id, reason, db_user = trail[0]
    assert (str(old_ts), old_id, str(new_ts), new_id) == (
        "2026-11-01 10:00:00",
        5,
        "2026-11-01 09:00:00",
        0,
    )
    assert reason == "re-send the 09:00 hour to the SIEM" and "root" in str(db_user)

    assert cli(["bookmark", "show", f"--bookmark-dsn={mysql_db}", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [(b["server_uuid"], b["id"]) for b in shown] == [(UUID, 0)]


@pytest.mark.parametrize(
    "extra",
    [
        ["--to=2026-11-01 09:00:00#0"],  # no reason
        ["--to=yesterday", "--reason=x"],
        ["--to=2026-13-01 09:00:00#0", "--reason=x"],
    ],
)
def test_set_refuses_incomplete_or_malformed_changes(mysql_db: MySQLDsn, extra: list[str]) -> None:
    assert (
        cli(["bookmark", "set", f"--bookmark-dsn={mysql_db}", f"--server-uuid={UUID}", *extra]) == 2
    )
