"""The producer end to end: the emulated audit source, the real broker, the real bookmark store.

What a subscriber sees is asserted: every generated event in the topic (across rotated and
gzipped files), decodable with the schema files alone, ``raw`` byte-equal to the file's line.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fastavro
import pytest

from auditstream.errors import SourceConfigError
from auditstream.position import Position
from emulator.traffic import write_events
from producer.__main__ import main
from producer.bookmark import BookmarkStore
from producer.loop import ORIGIN
from producer.publisher import ensure
from producer.source import MySQLSource
from schemas import registry
from tests.harness.emulator_fixtures import EmulatorHandle
from tests.producer.conftest import assert_chain_intact

Reader = Callable[..., list[tuple[str, dict[str, Any], Any]]]
START = datetime(2024, 3, 1, tzinfo=UTC)
LOG_FILE = re.compile(r"audit(_filter)?(\.\d{8}T\d{6})?\.log(\.gz)?")


def log_lines(log_dir: Path) -> list[str]:
    """Every event line of every audit log file (rotated, gzipped, live), in log order."""
    files = []
    for path in log_dir.iterdir():
        if not LOG_FILE.fullmatch(path.name):
            continue
        data = (
            gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        )
        lines = [
            line.rstrip(b",").decode()
            for line in data.splitlines()
            if line.strip() not in (b"[", b"]", b"")
        ]
        if lines:
            files.append((json.loads(lines[0])["timestamp"], path.name, lines))
    return [line for _, _, lines in sorted(files) for line in lines]


def decode_with_schema_files(value: bytes) -> dict[str, Any]:
    """What a subscriber with only ``schemas/versions/*.avsc`` does (no codec module)."""
    assert value[:2] == b"\xc3\x01"
    for name in (registry.AUDIT_EVENT, registry.CONTROL_EVENT):
        for schema in registry.versions(name).values():
            if registry.fingerprint64(schema) == value[2:10]:
                record = fastavro.schemaless_reader(io.BytesIO(value[10:]), schema, None)
                assert isinstance(record, dict)
                return record
    raise AssertionError("fingerprint of no published schema")


def run_producer(emu: EmulatorHandle, bootstrap: str, topics: tuple[str, str], *extra: str) -> int:
    password = emu.archiver_dsn.password
    assert password is not None
    argv = [
        "--source-dsn",
        f"mysql://archiver@127.0.0.1:{emu.port}",
        "--bootstrap-servers",
        bootstrap,
        "--topic",
        topics[0],
        "--control-topic",
        topics[1],
        "--once",
        *extra,
    ]
    # The documented way: the password in the environment, never on the command line.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AUDITSTREAM_SOURCE_PASSWORD", password.get_secret_value())
        return main(argv)


@pytest.fixture
def topics(unique_name: Callable[[str], str]) -> tuple[str, str]:
    return unique_name("ev"), unique_name("ctl")


@pytest.fixture
def bookmarks(mysql_server: Any) -> BookmarkStore:
    """``audit_archive.audit_config`` on the emulator's backend, where the producer's default
    bookmark DSN (the source server) lands through the emulator's proxy. Created directly on
    the backend: through the emulator an audited account would log its own setup statements,
    with today's time, into a log the test fills with older events."""
    store = BookmarkStore(mysql_server.dsn)
    store.setup()
    return store


@pytest.mark.parametrize("flavor", ["oracle", "percona"])
def test_every_event_across_rotated_and_gzipped_files_reaches_the_topic(
    flavor: str,
    emulator_factory: Callable[..., EmulatorHandle],
    bookmarks: BookmarkStore,
    bootstrap: str,
    topics: tuple[str, str],
    read_topic: Reader,
) -> None:
    emu = emulator_factory(flavor)
    store = bookmarks
    writer = emu.writer
    writer.compress = True
    write_events(writer, 400, seed=1, start=START)
    writer.rotate()  # gzipped
    writer.compress = False
    write_events(writer, 300, seed=2, start=datetime(2024, 3, 2, tzinfo=UTC))
    writer.rotate()  # plain
    write_events(writer, 250, seed=3, start=datetime(2024, 3, 3, tzinfo=UTC))  # live
    writer.flush()
    expected = log_lines(emu.log_dir)
    assert len(expected) == 950
    assert any(p.name.endswith(".gz") for p in emu.log_dir.iterdir())

    code = run_producer(
        emu, bootstrap, topics, "--start-from", "earliest", "--read-buffer-size", "65536"
    )
    assert code == 0
    got = read_topic(topics[0], len(expected))
    assert [r["raw"] for _, r, _ in got] == expected
    assert {key for key, _, _ in got} == {emu.server_uuid}
    assert all(decode_with_schema_files(m.value())["raw"] == r["raw"] for _, r, m in got)
    assert assert_chain_intact(emu.server_uuid, got) == len(expected)
    last = json.loads(expected[-1])
    assert store.load(emu.server_uuid) == Position(last["timestamp"], last["id"])


def test_default_start_is_latest_and_the_bookmark_is_inclusive(
    emulator: EmulatorHandle,
    bookmarks: BookmarkStore,
    bootstrap: str,
    topics: tuple[str, str],
    read_topic: Reader,
) -> None:
    store = bookmarks
    write_events(emulator.writer, 50, seed=4, start=START)
    assert run_producer(emulator, bootstrap, topics) == 0  # seeds the bookmark only
    before = len(log_lines(emulator.log_dir))
    write_events(emulator.writer, 20, seed=5, start=datetime(2024, 3, 5, tzinfo=UTC))
    assert run_producer(emulator, bootstrap, topics) == 0
    assert run_producer(emulator, bootstrap, topics) == 0  # nothing new: nothing sent twice
    got = read_topic(topics[0], 20)
    assert [r["raw"] for _, r, _ in got] == log_lines(emulator.log_dir)[before:]
    assert store.load(emulator.server_uuid) is not None


def test_self_audit_guard_refuses_unless_allowed(
    emulator_factory: Callable[..., EmulatorHandle],
) -> None:
    emu = emulator_factory(log_nothing_for_archiver=False)  # archiver falls under log_all
    source = MySQLSource(emu.archiver_dsn, read_buffer_size=4 << 20, allow_self_audit=False)
    with pytest.raises(SourceConfigError, match=r"log_all.*--allow-self-audit") as info:
        source.connect()
    assert info.value.exit_code == 4
    allowed = MySQLSource(emu.archiver_dsn, read_buffer_size=4 << 20, allow_self_audit=True)
    allowed.connect()
    assert allowed.server_uuid == emu.server_uuid
    allowed.close()


def test_guard_passes_with_log_nothing_and_flavors_are_detected(
    emulator_factory: Callable[..., EmulatorHandle],
) -> None:
    for flavor, name in (("oracle", "oracle"), ("percona", "percona")):
        emu = emulator_factory(flavor)
        source = MySQLSource(emu.archiver_dsn, read_buffer_size=65536, allow_self_audit=False)
        source.connect()
        assert source.flavor is not None and source.flavor.name == name
        source.close()


def test_a_log_that_is_not_json_is_refused(
    emulator_factory: Callable[..., EmulatorHandle],
) -> None:
    emu = emulator_factory(audit_log_format="NEW")
    source = MySQLSource(emu.archiver_dsn, read_buffer_size=65536, allow_self_audit=False)
    with pytest.raises(SourceConfigError, match="JSON"):
        source.connect()


@pytest.mark.parametrize(
    ("version", "fmt", "refusal"),
    [
        ("8.0.39-30", "OLD", "needs audit_log_filter_format=JSONL or audit_log_filter_format=JSON"),
        ("9.4.0-1", "NEW", "needs audit_log_filter.format=JSONL or audit_log_filter.format=JSON"),
        ("9.4.0-1", None, None),  # the 9.x default, JSONL, is read
        ("8.4.10-10", "JSON", None),
    ],
)
def test_percona_formats_are_read_or_refused_at_connect(
    emulator_factory: Callable[..., EmulatorHandle],
    version: str,
    fmt: str | None,
    refusal: str | None,
) -> None:
    emu = emulator_factory(
        "percona", server_version=version, audit_log_format=fmt, component=version >= "8.4"
    )
    source = MySQLSource(emu.archiver_dsn, read_buffer_size=65536, allow_self_audit=False)
    try:
        if refusal is None:
            source.connect()
            assert source.flavor is not None and source.flavor.percona
            return
        with pytest.raises(SourceConfigError, match="XML") as err:
            source.connect()
        assert refusal in str(err.value) and "rename audit_log_filter" in str(err.value)
    finally:
        source.close()


def write_around_a_big_one(emu: EmulatorHandle, query: str, seed: int) -> tuple[str, int]:
    """30 events, one status event carrying ``query``, 10 events; return the big one's position."""
    write_events(emu.writer, 30, seed=seed, start=START)
    big = emu.writer.write(
        {
            "timestamp": "2024-03-01 00:10:00",
            "class": "general",
            "event": "status",
            "general_data": {"query": query},
        }
    )
    write_events(emu.writer, 10, seed=seed + 1, start=datetime(2024, 3, 1, 0, 20, tzinfo=UTC))
    return big


def test_account_without_audit_admin_is_a_clear_config_error(
    emulator: EmulatorHandle,
) -> None:
    source = MySQLSource(emulator.dsn("app"), read_buffer_size=65536, allow_self_audit=True)
    source.connect()
    with pytest.raises(SourceConfigError, match="AUDIT_ADMIN"):
        source.latest()
    source.close()


@pytest.mark.parametrize("flavor", ["oracle", "percona"])
def test_oversized_events_become_gaps_never_silence(
    flavor: str,
    emulator_factory: Callable[..., EmulatorHandle],
    bookmarks: BookmarkStore,
    bootstrap: str,
    topics: tuple[str, str],
    read_topic: Reader,
) -> None:
    emu = emulator_factory(flavor)
    big = write_around_a_big_one(emu, "SELECT '" + "z" * 200_000 + "'", seed=6)
    lines = log_lines(emu.log_dir)
    # Oracle skips it with a warning (buffer 64 KB); Percona returns it whole and it does not fit
    # the topic (max 100 KB).
    code = run_producer(
        emu, bootstrap, topics, "--start-from", "earliest", "--read-buffer-size", "65536",
        "--max-message-bytes", "100000",
    )  # fmt: skip
    assert code == 0
    delivered = [r["raw"] for _, r, _ in read_topic(topics[0], 40)]
    assert delivered == [line for line in lines if '"z' not in line and "zzzz" not in line]
    (gap,) = [r for _, r, _ in read_topic(topics[1], 1) if r["kind"] == "gap"]
    assert gap["reason"] == ("oversized" if flavor == "oracle" else "too_large_for_topic")
    assert (gap["to_timestamp"], gap["to_id"]) == big
    if flavor == "percona":
        assert gap["size"] > 200_000 and len(gap["sha256"]) == 64
    events = read_topic(topics[0], 40)
    assert assert_chain_intact(emu.server_uuid, events, read_topic(topics[1], 1)) == 41


def test_a_topic_made_smaller_elsewhere_keeps_each_gap_at_its_place(
    emulator_factory: Callable[..., EmulatorHandle],
    bookmarks: BookmarkStore,
    bootstrap: str,
    topics: tuple[str, str],
    read_topic: Reader,
) -> None:
    """A topic someone created with a lower ``max.message.bytes`` than the producer's setting.

    The producer holds its client to the topic's limit, so the event that does not fit is
    refused before later events are linked: its gap sits at its own place in the chain (link
    31 here), and a restart continues the chain without two links under one number. Without
    the limit the broker refused the event after the next ten were linked (the gap was 41).
    """
    ensure({"bootstrap.servers": bootstrap}, topics, partitions=1, max_message_bytes=100_000)
    emu = emulator_factory("oracle")
    # Base64 of random bytes: zstd cannot shrink it under the topic's 100 KB.
    noise = base64.b64encode(random.Random(8).randbytes(150_000)).decode()
    big = write_around_a_big_one(emu, f"SELECT '{noise}'", seed=8)
    assert run_producer(emu, bootstrap, topics, "--start-from", "earliest") == 0
    events = read_topic(topics[0], 40)
    assert noise not in "".join(r["raw"] for _, r, _ in events)
    (gap,) = [r for _, r, _ in read_topic(topics[1], 1) if r["kind"] == "gap"]
    assert gap["reason"] == "too_large_for_topic"
    assert (gap["to_timestamp"], gap["to_id"]) == big
    assert gap["chain_seq"] == 31
    # A restart with five more events: the chain continues, no number is reused.
    write_events(emu.writer, 5, seed=10, start=datetime(2024, 3, 1, 0, 30, tzinfo=UTC))
    assert run_producer(emu, bootstrap, topics) == 0
    control = [m for m in read_topic(topics[1], 1) if "chain_seq" in m[1]]
    assert assert_chain_intact(emu.server_uuid, read_topic(topics[0], 45), control) == 46


def test_source_sql_filters_make_the_guard_pass(
    emulator_factory: Callable[..., EmulatorHandle],
) -> None:
    import sql
    from auditstream import mysql

    emu = emulator_factory(
        users=["audituser:audit-pw:AUDIT_ADMIN", "admin:admin-pw:ALL"],
        log_nothing_for_archiver=False,
    )
    guarded = MySQLSource(emu.dsn("audituser"), read_buffer_size=65536, allow_self_audit=False)
    with pytest.raises(SourceConfigError, match="log_all"):
        guarded.connect()
    conn = mysql.connect(emu.dsn("admin"))
    cur = conn.cursor()
    for statement in sql.statements("source/filters"):
        cur.execute(statement)
        cur.fetchall()
    conn.close()
    guarded.connect()  # assignments apply to new sessions: this one reads unaudited
    assert guarded.flavor is not None
    guarded.close()


@pytest.mark.parametrize("flavor", ["oracle", "percona"])
def test_restart_after_the_log_was_rotated_away_publishes_the_gap(
    flavor: str,
    emulator_factory: Callable[..., EmulatorHandle],
    bookmarks: BookmarkStore,
    bootstrap: str,
    topics: tuple[str, str],
    read_topic: Reader,
) -> None:
    emu = emulator_factory(flavor)
    write_events(emu.writer, 60, seed=11, start=START)
    assert run_producer(emu, bootstrap, topics, "--start-from", "earliest") == 0
    first_run = log_lines(emu.log_dir)
    bookmark = json.loads(first_run[-1])
    pruned = [emu.writer.rotate()]
    write_events(emu.writer, 40, seed=12, start=datetime(2024, 3, 2, tzinfo=UTC))
    pruned.append(emu.writer.rotate())
    write_events(emu.writer, 25, seed=13, start=datetime(2024, 3, 3, tzinfo=UTC))
    for path in pruned:  # pruned (audit_log_max_size) before the producer came back
        assert path is not None
        path.unlink()
    survivors = log_lines(emu.log_dir)
    assert run_producer(emu, bootstrap, topics) == 0
    got = [r["raw"] for _, r, _ in read_topic(topics[0], 60 + 25)]
    assert got == first_run + survivors
    (gap,) = [r for _, r, _ in read_topic(topics[1], 1) if r["kind"] == "gap"]
    assert gap["reason"] == "rotated_away"
    assert (gap["from_timestamp"], gap["from_id"]) == (bookmark["timestamp"], bookmark["id"])
    first = json.loads(survivors[0])
    assert (gap["to_timestamp"], gap["to_id"]) == (first["timestamp"], first["id"])
    last = json.loads(survivors[-1])
    assert bookmarks.load(emu.server_uuid) == Position(last["timestamp"], last["id"])


def test_source_restart_reconnects_and_resumes_from_the_bookmark(
    emulator: EmulatorHandle,
    bookmarks: BookmarkStore,
    bootstrap: str,
    topics: tuple[str, str],
    read_topic: Reader,
    mysql_server: Any,
) -> None:
    import threading

    from auditstream.kafka import producer_config
    from producer.config import Options
    from producer.loop import Loop
    from producer.publisher import Publisher, ensure
    from schemas.codec import SingleObjectCodec

    ensure({"bootstrap.servers": bootstrap}, topics, partitions=6, max_message_bytes=2**24)
    write_events(emulator.writer, 300, seed=21, start=START)
    source = MySQLSource(emulator.archiver_dsn, read_buffer_size=65536, allow_self_audit=False)
    kafka = producer_config(bootstrap, {"linger.ms": 5})
    opts = Options(
        topic=topics[0], control_topic=topics[1], start_from="earliest", idle_min=0.05,
        idle_max=0.2, backoff_max=0.5, heartbeat_interval=3600,
    )  # fmt: skip
    store = BookmarkStore(mysql_server.dsn)
    loop = Loop(source, lambda u: Publisher(kafka, u), store, SingleObjectCodec(), opts)
    thread = threading.Thread(target=loop.run)
    thread.start()

    def wait_for_end() -> None:
        last = json.loads(log_lines(emulator.log_dir)[-1])
        end = Position(last["timestamp"], last["id"])
        for _ in range(600):
            if loop.bookmark == end:
                return
            threading.Event().wait(0.05)
        raise AssertionError(f"bookmark {loop.bookmark} never reached {end}")

    try:
        wait_for_end()
        emulator.restart()  # the producer's session is gone
        write_events(emulator.writer, 200, seed=22, start=datetime(2024, 3, 9, tzinfo=UTC))
        wait_for_end()
    finally:
        loop.stop()
        thread.join(30)
    expected = log_lines(emulator.log_dir)
    got = read_topic(topics[0], len(expected))
    assert [r["raw"] for _, r, _ in got] == expected  # nothing missing, nothing twice
    assert assert_chain_intact(emulator.server_uuid, got) == 500


def test_latest_on_an_empty_log_streams_everything_written_afterwards(
    emulator: EmulatorHandle,
    bookmarks: BookmarkStore,
    bootstrap: str,
    topics: tuple[str, str],
    read_topic: Reader,
) -> None:
    assert run_producer(emulator, bootstrap, topics) == 0  # nothing to seed from
    assert bookmarks.load(emulator.server_uuid) == ORIGIN  # "from the log's beginning"
    write_events(emulator.writer, 15, seed=31, start=START)
    assert run_producer(emulator, bootstrap, topics) == 0
    assert [r["raw"] for _, r, _ in read_topic(topics[0], 15)] == log_lines(emulator.log_dir)
