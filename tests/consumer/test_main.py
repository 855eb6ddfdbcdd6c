"""``python -m consumer`` as operators run it: three members in one group, kill -9, rotation.

The group test is the issue's "done when": members are killed with SIGKILL in the middle of
batches and commits (a kill lands wherever the member happens to be: polling, inside the
transaction, between the database commit and the Kafka commit), replacements join (rebalances),
the archive database is killed and restarted under them, a rotation renames audit_data, the
producer re-sends after a "crash", and at the end every produced event is in the archive
exactly once.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from auditstream.dsn import MySQLDsn
from consumer.__main__ import main
from consumer.setup import setup
from tests.consumer.conftest import RecordFactory, query
from tests.consumer.kafkatools import create_topics, produce
from tests.harness.mariadb import PrivateMariaDB

ROOT = Path(__file__).resolve().parents[2]
SERVERS = [f"10000000-0000-0000-0000-00000000000{n}" for n in range(6)]
ROTATED = ("audit_data_20240301_000000", "audit_data_20240301_000001")
ALL_ROWS = (
    "SELECT COUNT(*), COUNT(DISTINCT server_uuid, ts, id) FROM ("
    "SELECT server_uuid, ts, id FROM audit_data UNION ALL "
    + " UNION ALL ".join(f"SELECT server_uuid, ts, id FROM {t}" for t in ROTATED)
    + ") u"
)


class Member:
    """One ``python -m consumer`` process, its log in a file."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "consumer", *args],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={k: v for k, v in os.environ.items() if not k.startswith("AUDITSTREAM_")},
            )

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


def cli_args(bootstrap: str, archive: MySQLDsn, names: dict[str, str], *extra: str) -> list[str]:
    return [
        "--archive-dsn", archive.url(reveal=True), "--bootstrap-servers", bootstrap,
        "--topic", names["topic"], "--control-topic", names["control"],
        "--dlq-topic", names["dlq"], "--group", names["group"],
        "--batch-rows", "250", "--batch-linger-ms", "50",
        "--kafka-config", "session.timeout.ms=2000",
        "--kafka-config", "heartbeat.interval.ms=500",
        *extra,
    ]  # fmt: skip


def rows(dsn: MySQLDsn, statement: str = "SELECT COUNT(*) FROM audit_data") -> int:
    try:
        return int(query(dsn, statement)[0][0])
    except Exception:
        return -1


def wait_for(cond: Callable[[], bool], timeout: float, members: list[Member]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    logs = "\n".join(m.log.read_text(errors="replace")[-3000:] for m in members)
    raise AssertionError(f"condition not reached in {timeout}s; member logs:\n{logs}")


def rotate(archive: MySQLDsn, name: str) -> None:
    """What the rotator does: a fresh table LIKE the template, then one atomic RENAME."""
    query(archive, "CREATE TABLE audit_data_new LIKE audit_data_template")
    query(archive, f"RENAME TABLE audit_data TO {name}, audit_data_new TO audit_data")


def run_group(
    bootstrap: str,
    archive: MySQLDsn,
    names: dict[str, str],
    records: RecordFactory,
    tmp_path: Path,
    per_server: int,
    kills: int,
    server: PrivateMariaDB | None = None,
) -> None:
    create_topics(bootstrap, names["topic"], names["control"], partitions=6)
    by_server = [records(s, per_server) for s in SERVERS]
    first = [r for rs in by_server for r in rs]
    # Each server's last quarter is produced only after the first rotation, so that the rotation
    # always falls inside the stream (a fast group used to archive everything before it).
    head = [r for rs in by_server for r in rs[: per_server * 3 // 4]]
    produce(bootstrap, names["topic"], head)
    args = cli_args(bootstrap, archive, names)
    members = [Member(args, tmp_path / f"m{i}.log") for i in range(3)]
    rng = random.Random(5)
    total = len(first)
    try:
        for k in range(kills):
            target = total * (k + 1) // (kills + 2)
            wait_for(lambda t=target: rows(archive) >= t, 90, members)  # type: ignore[misc]
            time.sleep(rng.uniform(0, 0.3))  # somewhere inside a batch or a commit
            if k == 0 and server is not None:
                server.kill()  # the archive crashes under the group, then comes back
            victim = rng.randrange(len(members))
            members[victim].kill()
            members[victim] = Member(args, tmp_path / f"r{k}.log")
            if k == 0 and server is not None:
                time.sleep(1.5)
                server.start()
            if k == 1:
                rotate(archive, ROTATED[0])  # while the members write
                produce(
                    bootstrap,
                    names["topic"],
                    [r for rs in by_server for r in rs[len(head) // len(SERVERS) :]],
                )
        first_rows = (
            f"SELECT (SELECT COUNT(*) FROM audit_data) + (SELECT COUNT(*) FROM {ROTATED[0]})"
        )
        wait_for(lambda: rows(archive, first_rows) >= total, 120, members)
        rotate(archive, ROTATED[1])
        # Each producer "crashed" before its bookmark moved: it re-sends its last 40 events,
        # whose first copies are now in a rotated table, then goes on with new ones.
        more = []
        for s in SERVERS:
            more += records(s, per_server + 100)[per_server - 40 :]
        produce(bootstrap, names["topic"], more)
        expected = total + 100 * len(SERVERS)
        wait_for(lambda: rows(archive, ALL_ROWS) >= expected, 120, members)
        time.sleep(1.0)  # a duplicate would need a moment more to land
    finally:
        codes = [m.stop() for m in members]
    assert codes == [0, 0, 0]
    assert query(archive, ALL_ROWS) == [(expected, expected)]
    per_table = [rows(archive, f"SELECT COUNT(*) FROM {t}") for t in (*ROTATED, "audit_data")]
    assert 0 < per_table[0] < total and per_table[2] == 100 * len(SERVERS), per_table
    stored = query(
        archive, "SELECT SUM(next_offset) FROM audit_offsets WHERE topic = %s", (names["topic"],)
    )
    assert stored == [(total + len(more),)]


@pytest.fixture
def private_archive() -> Iterator[tuple[PrivateMariaDB, MySQLDsn]]:
    """An archive on a mariadbd of this test's own (the session's server must not restart)."""
    server = PrivateMariaDB().start()
    try:
        dsn = server.dsn.with_database("a_group")
        setup(dsn)
        yield server, dsn
    finally:
        server.cleanup()


def test_three_members_kill9_rebalance_rotation_resend_and_archive_restart_exactly_once(
    bootstrap: str,
    private_archive: tuple[PrivateMariaDB, MySQLDsn],
    names: dict[str, str],
    records: RecordFactory,
    tmp_path: Path,
) -> None:
    server, dsn = private_archive
    run_group(bootstrap, dsn, names, records, tmp_path, per_server=1500, kills=2, server=server)


@pytest.mark.long
def test_three_members_many_kills_exactly_once(
    bootstrap: str, archive: MySQLDsn, names: dict[str, str], records: RecordFactory, tmp_path: Path
) -> None:
    run_group(bootstrap, archive, names, records, tmp_path, per_server=8000, kills=8)


def test_cli_setup_then_once_and_flags_from_environment(
    bootstrap: str,
    mysql_db: MySQLDsn,
    names: dict[str, str],
    records: RecordFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    password_less = mysql_db.url(reveal=True)
    assert main(["setup", "--archive-dsn", password_less]) == 0
    create_topics(bootstrap, names["topic"], names["control"], partitions=2)
    produce(bootstrap, names["topic"], records(SERVERS[0], 120))
    monkeypatch.setenv("AUDITSTREAM_ARCHIVE_DSN", password_less)
    monkeypatch.setenv("AUDITSTREAM_TOPIC", names["topic"])
    proc = subprocess.run(
        [sys.executable, "-m", "consumer", "--once", "--bootstrap-servers", bootstrap,
         "--control-topic", names["control"], "--dlq-topic", names["dlq"], "--group", names["group"],
         "--kafka-config", "session.timeout.ms=2000"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "AUDITSTREAM_ARCHIVE_DSN": password_less, "AUDITSTREAM_TOPIC": names["topic"]},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert query(mysql_db, "SELECT COUNT(*) FROM audit_data") == [(120,)]


def test_once_with_more_members_than_partitions(
    bootstrap: str, archive: MySQLDsn, names: dict[str, str], records: RecordFactory
) -> None:
    """A member the group gives nothing is caught up at once; the other drains its partition."""
    create_topics(bootstrap, names["topic"], names["control"], partitions=1)
    produce(bootstrap, names["topic"], records(SERVERS[0], 300))
    command = [sys.executable, "-m", "consumer", "--once", *cli_args(bootstrap, archive, names)]
    procs = [
        subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    try:
        results = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in results]
    assert query(archive, "SELECT COUNT(*), COUNT(DISTINCT ts, id) FROM audit_data") == [(300, 300)]


def test_dropped_table_stops_the_member_with_a_clear_error(
    bootstrap: str, archive: MySQLDsn, names: dict[str, str], records: RecordFactory
) -> None:
    create_topics(bootstrap, names["topic"], names["control"], partitions=1)
    produce(bootstrap, names["topic"], records(SERVERS[0], 50))
    query(archive, "DROP TABLE audit_data")
    proc = subprocess.run(
        [sys.executable, "-m", "consumer", "--once", *cli_args(bootstrap, archive, names)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 4
    assert "run `consumer setup`" in proc.stderr
    # Nothing was dead-lettered or skipped: after setup, every event lands.
    assert main(["setup", "--archive-dsn", archive.url(reveal=True)]) == 0
    again = subprocess.run(
        [sys.executable, "-m", "consumer", "--once", *cli_args(bootstrap, archive, names)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    assert query(archive, "SELECT COUNT(*) FROM audit_data") == [(50,)]


def test_ops_subcommands_are_dispatched_lazily() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import consumer.__main__ as m, sys; "
         "print(sorted(m.OPS)); print('consumer.ops' in sys.modules)"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.stdout.split("\n")[:2] == ["['restore', 'rotate', 'upload']", "False"]
