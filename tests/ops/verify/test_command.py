"""``auditstream verify`` end to end: exit codes, what it prints, the range and the anchor file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from auditstream.chain import ChainState
from auditstream.dsn import MySQLDsn
from auditstream.kafka import TopicSpec, ensure_topics
from auditstream.mysql import Connection, connect
from ops.cli import main
from tests.ops.verify.conftest import ROTATED, A, B, chained_records, create_archive
from tests.ops.verify.test_topic import publish

Archive = tuple[MySQLDsn, Connection]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["verify", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_an_intact_archive_exits_0_and_writes_the_anchor(
    archive: Archive, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    anchor = tmp_path / "anchor.json"
    code, out, _ = run(
        capsys, "--archive-dsn", archive[0].url(reveal=True), "--write-anchor", str(anchor)
    )
    assert code == 0, out
    assert f"archive {archive[0]}: intact" in out
    assert f"server {A}: 32 links (seq 1..32" in out and "from genesis" in out
    written = json.loads(anchor.read_text())["servers"]
    assert written[A]["seq"] == 32 and written[B]["seq"] == 5
    last = chained_records(A)[-1][1]
    assert written[A]["bookmark"] == [last["timestamp"].strftime("%Y-%m-%d %H:%M:%S"), last["id"]]


def test_tampering_exits_1_and_names_the_row(
    archive: Archive, sql_exec: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    sql_exec(
        "UPDATE audit_data SET raw = CONCAT(raw, ' ') WHERE server_uuid = %s AND chain_seq = 30", A
    )
    code, out, _ = run(capsys, "--archive-dsn", archive[0].url(reveal=True), "--server-uuid", A)
    assert code == 1
    assert "NOT INTACT" in out
    [line] = [x for x in out.splitlines() if "TAMPER" in x]
    assert (
        f"TAMPER altered: server={A} seq=30 bookmark=" in line
        and "at table audit_data row (ts=" in line
    )


def test_the_anchor_catches_rows_deleted_at_the_end(
    archive: Archive,
    sql_exec: Callable[..., int],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    dsn = archive[0].url(reveal=True)
    anchor = tmp_path / "anchor.json"
    assert run(capsys, "--archive-dsn", dsn, "--write-anchor", str(anchor))[0] == 0
    sql_exec("DELETE FROM audit_data WHERE server_uuid = %s AND chain_seq >= 31", A)
    assert run(capsys, "--archive-dsn", dsn)[0] == 0  # without the anchor, a cut end is invisible
    code, out, _ = run(capsys, "--archive-dsn", dsn, "--anchor", str(anchor))
    assert code == 1 and f"TAMPER truncated: server={A} seq=30" in out


def test_a_range_is_verified_with_a_trusted_start(
    archive: Archive, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "--archive-dsn", archive[0].url(reveal=True), "--server-uuid", A,
                       "--since", "2020-10-19 19:27:45#1", "--until", "2020-10-19 19:31:40#1")  # fmt: skip
    assert code == 0, out
    assert f"server {A}: 17 links (seq 6..22 " in out and "start trusted" in out
    assert f"server {B}" not in out


def test_topic_archive_and_dumps_in_one_run(
    archive: Archive, capsys: pytest.CaptureFixture[str], tmp_path: Path, bootstrap: str,
    unique_name: Callable[[str], str],
) -> None:  # fmt: skip
    dump = pytest.importorskip("consumer.dump")
    topics = {"events": unique_name("ev"), "control": unique_name("ctl"), "dlq": unique_name("dlq")}
    ensure_topics({"bootstrap.servers": bootstrap}, [TopicSpec(n, 2, 1) for n in topics.values()])
    publish(bootstrap, topics, chained_records(A) + chained_records(B, 5))
    dump.dump_table(archive[1], ROTATED, tmp_path / ROTATED)
    code, out, err = run(
        capsys, "--archive-dsn", archive[0].url(reveal=True), "--target", f"file://{tmp_path}",
        "--bootstrap-servers", bootstrap, "--topic", topics["events"],
        "--control-topic", topics["control"], "--dlq-topic", topics["dlq"],
    )  # fmt: skip
    assert code == 0, out + err
    assert [x for x in out.splitlines() if not x.startswith(" ")] == [
        f"topic {topics['events']}: intact",
        f"archive {archive[0]}: intact",
        f"dumps file://{tmp_path}: intact",
        "cross-check of the stores: intact",
    ]


def test_an_archive_rewritten_with_valid_hashes_disagrees_with_the_topic(
    archive: Archive, sql_exec: Callable[..., int], capsys: pytest.CaptureFixture[str],
    bootstrap: str, unique_name: Callable[[str], str],
) -> None:  # fmt: skip
    """Someone with write access recomputes every hash after the rows they changed."""
    topics = {"events": unique_name("ev"), "control": unique_name("ctl"), "dlq": unique_name("dlq")}
    ensure_topics({"bootstrap.servers": bootstrap}, [TopicSpec(n, 2, 1) for n in topics.values()])
    records = chained_records(A)
    publish(bootstrap, topics, records)
    state = ChainState(A, records[23][1]["chain"], 24)
    for _, r in records[24:]:
        raw = r["raw"].replace("audit_test", "innocent")
        state = state.advance_event(r["timestamp"], r["id"], raw)
        sql_exec("UPDATE audit_data SET raw = %s, chain = %s WHERE server_uuid = %s AND chain_seq = %s",
                 raw, state.hash, A, state.seq)  # fmt: skip
    dsn = archive[0].url(reveal=True)
    assert run(capsys, "--archive-dsn", dsn, "--server-uuid", A)[0] == 0  # alone it looks intact
    code, out, _ = run(capsys, "--archive-dsn", dsn, "--server-uuid", A, "--bootstrap-servers", bootstrap,
                       "--topic", topics["events"], "--control-topic", topics["control"], "--dlq-topic", topics["dlq"])  # fmt: skip
    assert code == 1
    assert "cross-check of the stores: NOT INTACT" in out
    assert (
        f"TAMPER diverged: server={A} seq=32 bookmark=- at topic {topics['events']} / archive {archive[0]}"
        in out
    )


def test_settings_and_missing_chain_columns_are_exit_2(
    mysql_db: MySQLDsn, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys)
    assert code == 2 and "--archive-dsn" in err
    conn = connect(mysql_db)
    create_archive(conn, chained=False)
    conn.close()
    code, _, err = run(capsys, "--archive-dsn", mysql_db.url(reveal=True))
    assert code == 2 and "ADD COLUMN (chain CHAR(64)" in err
