"""The read loop's guarantee, on the real broker and bookmark store, with an in-memory source.

The source is ``FakeSource`` (audit_log_read's documented semantics, pages through the real
splitter); the broker (Tansu), the bookmark store (MariaDB) and the codec are real. Assertions
are on what a subscriber and an operator see: messages in the topics, the stored bookmark.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from auditstream.chain import ChainState
from auditstream.dsn import MySQLDsn
from auditstream.embedded import free_port
from auditstream.errors import ArchiveError, DeliveryError, PageError, SourceUnavailable
from auditstream.kafka import producer_config
from auditstream.position import Position
from producer.bookmark import BookmarkStore, Stored
from producer.config import Options
from producer.loop import Loop
from producer.publisher import Publisher, ensure
from schemas.codec import RegistryCodec, SingleObjectCodec
from tests.producer.conftest import (
    UUID,
    FakeSource,
    assert_chain_intact,
    make_events,
    sample_events,
)

Reader = Callable[..., list[tuple[str, dict[str, Any], Any]]]


class Crash(BaseException):
    """Stands for kill -9: nothing after it runs (not an AuditStreamError, never retried)."""


class CrashingStore:
    """The real store, dying right after the acks of batch ``after`` (before step 5)."""

    def __init__(self, real: BookmarkStore, after: int) -> None:
        self.real, self.after, self.calls = real, after, 0

    def load_state(self, server_uuid: str) -> Stored | None:
        return self.real.load_state(server_uuid)

    def store(self, server_uuid: str, position: Position, chain: ChainState | None = None) -> None:
        self.calls += 1
        if self.calls > self.after:
            raise Crash
        self.real.store(server_uuid, position, chain)


@pytest.fixture
def topics(bootstrap: str, unique_name: Callable[[str], str]) -> tuple[str, str]:
    events, control = unique_name("ev"), unique_name("ctl")
    ensure(
        {"bootstrap.servers": bootstrap}, [events, control], partitions=6, max_message_bytes=2**24
    )
    return events, control


def make_loop(
    source: FakeSource, store: Any, bootstrap: str, topics: tuple[str, str], **opts: Any
) -> Loop:
    settings: dict[str, Any] = {
        "topic": topics[0],
        "control_topic": topics[1],
        "start_from": "earliest",
        "once": True,
        "idle_min": 0.01,
        "idle_max": 0.05,
        "backoff_max": 0.2,
        "heartbeat_interval": 3600,
        "ack_timeout": 20,
    }
    settings.update(opts)
    kafka = producer_config(opts.pop("bootstrap", bootstrap), {"linger.ms": 5})
    return Loop(
        source, lambda u: Publisher(kafka, u), store, SingleObjectCodec(), Options(**settings)
    )


def raws(messages: list[tuple[str, dict[str, Any], Any]]) -> list[str]:
    return [record["raw"] for _, record, _ in messages]


def test_every_event_reaches_the_topic_exactly_as_read(
    store: BookmarkStore, bootstrap: str, topics: tuple[str, str], read_topic: Reader
) -> None:
    events = sample_events() + make_events(200, start="2021-01-01 00:00:")
    source = FakeSource(events, buffer=8192)  # many pages
    make_loop(source, store, bootstrap, topics, batch_events=7).run()
    got = read_topic(topics[0], len(events))
    assert raws(got) == events
    assert {key for key, _, _ in got} == {UUID}
    assert all(
        orjson.loads(r["raw"]) == orjson.loads(e) for (_, r, _), e in zip(got, events, strict=True)
    )
    assert store.load(UUID) == source.positions[-1]
    # A second run starts WITH the bookmarked event (inclusive read) and sends nothing again.
    loop = make_loop(source, store, bootstrap, topics)
    loop.run()
    assert loop.batcher is not None and loop.batcher.sent == 0
    source.append(make_events(1, start="2030-01-01 00:00:00")[0])
    make_loop(source, store, bootstrap, topics).run()
    assert raws(read_topic(topics[0], len(events) + 1)) == [*events, source.events[-1]]


def test_latest_seeds_the_bookmark_and_streams_only_what_follows(
    store: BookmarkStore, bootstrap: str, topics: tuple[str, str], read_topic: Reader
) -> None:
    old = make_events(5)
    source = FakeSource(old)
    make_loop(source, store, bootstrap, topics, start_from="latest").run()
    assert store.load(UUID) == source.positions[-1]
    new = make_events(3, start="2025-01-01 00:00:")
    for raw in new:
        source.append(raw)
    make_loop(source, store, bootstrap, topics, start_from="latest").run()
    assert raws(read_topic(topics[0], 3)) == new


def test_crash_after_acks_before_the_bookmark_resends_at_most_one_batch(
    store: BookmarkStore, bootstrap: str, topics: tuple[str, str], read_topic: Reader
) -> None:
    events = make_events(60)
    source = FakeSource(events)
    with pytest.raises(Crash):
        make_loop(source, CrashingStore(store, after=3), bootstrap, topics, batch_events=10).run()
    stored = store.load(UUID)
    assert stored == source.positions[29]  # three batches bookmarked; the fourth was acked only
    make_loop(source, store, bootstrap, topics, batch_events=10).run()
    got = raws(read_topic(topics[0], 70))
    assert sorted(set(got)) == sorted(events)  # nothing missing
    duplicates = [e for e in got if got.count(e) > 1]
    assert set(duplicates) == set(events[30:40])  # only after the stored bookmark, one batch
    # The re-sent batch carries the hashes it had the first time: the chain is intact.
    assert assert_chain_intact(UUID, read_topic(topics[0], 70)) == 60


def test_broker_unavailable_never_advances_the_bookmark(
    store: BookmarkStore, topics: tuple[str, str], bootstrap: str, read_topic: Reader
) -> None:
    events = make_events(20)
    source = FakeSource(events)
    dead = f"127.0.0.1:{free_port()}"
    kafka = producer_config(dead, {"message.timeout.ms": 1000})
    opts = Options(topic=topics[0], control_topic=topics[1], start_from="earliest", once=True)
    loop = Loop(source, lambda u: Publisher(kafka, u), store, SingleObjectCodec(), opts)
    with pytest.raises(DeliveryError):
        loop.run()
    assert store.load(UUID) is None
    make_loop(source, store, bootstrap, topics).run()
    assert raws(read_topic(topics[0], 20)) == events


def test_lost_source_connection_reconnects_and_resumes_from_the_bookmark(
    store: BookmarkStore, bootstrap: str, topics: tuple[str, str], read_topic: Reader
) -> None:
    events = make_events(100)
    source = FakeSource(events, buffer=4096)
    lost = SourceUnavailable("source connection failed: 2013 Lost connection", errno=2013)
    source.fail_next = [lost, lost]  # startup fails twice: capped backoff, then on
    loop = make_loop(source, store, bootstrap, topics, once=False)
    thread = threading.Thread(target=loop.run)
    thread.start()
    try:
        for _ in range(200):
            if loop.bookmark == source.positions[-1]:
                break
            threading.Event().wait(0.05)
        source.fail_next = [lost]  # fails again, mid-stream this time
        for raw in make_events(30, start="2026-01-01 00:00:"):
            source.append(raw)
        for _ in range(200):
            if loop.bookmark == source.positions[-1]:
                break
            threading.Event().wait(0.05)
    finally:
        loop.stop()
        thread.join(30)
    assert not thread.is_alive()
    assert source.connects >= 2
    got = raws(read_topic(topics[0], 130))
    assert got == source.events  # resumed from the bookmark: nothing missing, nothing twice
    assert store.load(UUID) == source.positions[-1]


def test_stop_finishes_the_batch_in_flight_and_stores_its_bookmark(
    store: BookmarkStore, bootstrap: str, topics: tuple[str, str], read_topic: Reader
) -> None:
    source = FakeSource(make_events(3000), buffer=65536)
    loop = make_loop(source, store, bootstrap, topics, once=False, batch_events=50)
    thread = threading.Thread(target=loop.run)
    thread.start()
    while loop.bookmark is None:
        threading.Event().wait(0.01)
    loop.stop()
    thread.join(30)
    assert not thread.is_alive()
    stored = store.load(UUID)
    assert stored is not None and stored == loop.bookmark
    index = source.positions.index(stored)
    got = raws(read_topic(topics[0], index + 1, timeout=15))
    assert got[: index + 1] == source.events[: index + 1]


def gaps(read_topic: Reader, topic: str, count: int) -> list[dict[str, Any]]:
    return [r for _, r, _ in read_topic(topic, count) if r["kind"] == "gap"]


def test_oracle_skipped_oversized_event_becomes_a_gap_with_the_warning(
    store: BookmarkStore, bootstrap: str, topics: tuple[str, str], read_topic: Reader
) -> None:
    events = make_events(6)
    big = events[3].replace("SELECT 3", "SELECT " + "x" * 40_000)
    source = FakeSource([*events[:3], big, *events[4:]], buffer=32768)
    make_loop(source, store, bootstrap, topics).run()
    assert raws(read_topic(topics[0], 5)) == [*events[:3], *events[4:]]
    (gap,) = gaps(read_topic, topics[1], 1)
    assert gap["reason"] == "oversized" and "does not fit" in gap["detail"]
    # The gap is a link between the events around the skipped one.
    assert assert_chain_intact(UUID, read_topic(topics[0], 5), read_topic(topics[1], 1)) == 6
    assert gap["chain_seq"] == 4
    assert (gap["from_timestamp"], gap["from_id"]) == tuple(source.positions[3])
    assert gap["server_uuid"] == UUID
    # Re-reading the same position does not report the same warning again.
    make_loop(source, store, bootstrap, topics).run()
    assert store.load(UUID) == source.positions[-1]


def test_event_too_large_for_the_topic_becomes_a_gap_with_size_and_hash(
    store: BookmarkStore, bootstrap: str, topics: tuple[str, str], read_topic: Reader
) -> None:
    events = make_events(4, percona=True)
    big = events[1].replace("SELECT 1", "SELECT " + "y" * 300_000)
    source = FakeSource([events[0], big, *events[2:]], buffer=32768, percona=True)
    make_loop(source, store, bootstrap, topics, max_message_bytes=100_000).run()
    assert raws(read_topic(topics[0], 3)) == [events[0], *events[2:]]
    (gap,) = gaps(read_topic, topics[1], 1)
    assert gap["reason"] == "too_large_for_topic"
    assert gap["size"] == len(big.encode())
    assert gap["sha256"] == hashlib.sha256(big.encode()).hexdigest()
    assert (gap["to_timestamp"], gap["to_id"]) == tuple(source.positions[1])
    assert store.load(UUID) == source.positions[-1]


@pytest.mark.parametrize("percona", [False, True])
def test_vanished_bookmark_is_a_gap_and_streaming_goes_on(
    percona: bool,
    store: BookmarkStore,
    bootstrap: str,
    topics: tuple[str, str],
    read_topic: Reader,
) -> None:
    events = make_events(12, percona=percona)
    source = FakeSource(events, percona=percona)
    store.store(UUID, source.positions[4])
    source.remove(7)  # the bookmarked event and two after it were pruned
    make_loop(source, store, bootstrap, topics).run()
    assert raws(read_topic(topics[0], 5)) == events[7:]
    (gap,) = gaps(read_topic, topics[1], 1)
    assert gap["reason"] in ("rotated_away", "missing_bookmark")
    bookmark = orjson.loads(events[4])
    assert (gap["from_timestamp"], gap["from_id"]) == (bookmark["timestamp"], bookmark["id"])
    assert (gap["bookmark_timestamp"], gap["bookmark_id"]) == (
        bookmark["timestamp"],
        bookmark["id"],
    )
    assert (gap["to_timestamp"], gap["to_id"]) == tuple(source.positions[0])
    assert store.load(UUID) == source.positions[-1]


def test_invalid_event_is_published_as_a_gap_and_does_not_stop_the_stream(
    store: BookmarkStore, bootstrap: str, topics: tuple[str, str], read_topic: Reader
) -> None:
    events = make_events(3)
    bad = '{ "timestamp": "2024-01-01 00:00:00", "class": "general" }'
    source = FakeSource(events)
    source.pages = ["[" + ",".join([events[0], bad, *events[1:]]) + ",null]"]
    make_loop(source, store, bootstrap, topics).run()
    assert raws(read_topic(topics[0], 3)) == events
    (gap,) = gaps(read_topic, topics[1], 1)
    assert gap["reason"] == "invalid_event" and "id missing" in gap["detail"]
    assert gap["sha256"] == hashlib.sha256(bad.encode()).hexdigest()
    assert store.load(UUID) == source.positions[-1]


def test_unreadable_page_stops_with_page_error_and_keeps_the_bookmark(
    store: BookmarkStore, bootstrap: str, topics: tuple[str, str], read_topic: Reader
) -> None:
    events = make_events(6)
    source = FakeSource(events)
    store.store(UUID, source.positions[1])
    source.pages = ["[" + ",".join(events[1:4]) + ',{"timestamp": "2024-']
    with pytest.raises(PageError, match="truncated"):
        make_loop(source, store, bootstrap, topics, once=False).run()
    assert store.load(UUID) == source.positions[1]
    make_loop(source, store, bootstrap, topics).run()
    assert raws(read_topic(topics[0], 4)) == events[2:]


def test_heartbeat_carries_the_bookmark_and_the_event_time_lag(
    store: BookmarkStore,
    bootstrap: str,
    topics: tuple[str, str],
    read_topic: Reader,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = FakeSource(make_events(4, start="2024-01-01 00:00:"))  # last event at 00:00:01
    # The server has written a newer event that is not readable yet (async write buffer).
    monkeypatch.setattr(source, "latest", lambda: Position("2024-01-01 00:01:40", 0))
    make_loop(source, store, bootstrap, topics, heartbeat_interval=0.01).run()
    (beat,) = [r for _, r, _ in read_topic(topics[1], 1) if r["kind"] == "heartbeat"]
    assert beat["server_uuid"] == UUID
    assert (beat["bookmark_timestamp"], beat["bookmark_id"]) == tuple(source.positions[-1])
    assert beat["lag_seconds"] == pytest.approx(99.0)


def test_with_a_schema_registry_values_use_confluent_framing(
    store: BookmarkStore, bootstrap: str, topics: tuple[str, str], read_topic: Reader
) -> None:
    events = sample_events()
    registry = RegistryCodec(f"mock://{topics[0]}")
    kafka = producer_config(bootstrap, {"linger.ms": 5})
    opts = Options(topic=topics[0], control_topic=topics[1], start_from="earliest", once=True)
    Loop(FakeSource(events), lambda u: Publisher(kafka, u), store, registry, opts).run()
    got = read_topic(topics[0], len(events), c=registry)
    assert [r["raw"] for _, r, _ in got] == events
    assert all(m.value()[0] == 0 for _, _, m in got)  # magic byte 0 + schema id


class FlakyStore:
    """The real store behind a link that drops the first ``failures`` upserts."""

    def __init__(self, real: BookmarkStore, failures: int) -> None:
        self.real, self.failures, self.refused = real, failures, 0

    def load_state(self, server_uuid: str) -> Stored | None:
        return self.real.load_state(server_uuid)

    def store(self, server_uuid: str, position: Position, chain: ChainState | None = None) -> None:
        if self.refused < self.failures:
            self.refused += 1
            raise ArchiveError("cannot store the bookmark: 2013 Lost connection")
        self.real.store(server_uuid, position, chain)


def test_bookmark_store_outage_is_retried_in_place_without_resending(
    store: BookmarkStore,
    mysql_db: MySQLDsn,
    bootstrap: str,
    topics: tuple[str, str],
    read_topic: Reader,
) -> None:
    events = make_events(40)
    watcher = BookmarkStore(mysql_db)  # a session of its own: the loop's is not shared
    flaky = FlakyStore(store, failures=3)
    loop = make_loop(FakeSource(events), flaky, bootstrap, topics, once=False, batch_events=10)
    thread = threading.Thread(target=loop.run)
    thread.start()
    try:
        for _ in range(400):
            if watcher.load(UUID) == orjson_position(events[-1]):
                break
            threading.Event().wait(0.05)
    finally:
        loop.stop()
        thread.join(30)
    assert flaky.refused == 3
    assert store.load(UUID) == orjson_position(events[-1])
    assert raws(read_topic(topics[0], 40)) == events  # the acknowledged batch was not re-sent


def orjson_position(raw: str) -> Position:
    obj = orjson.loads(raw)
    return Position(obj["timestamp"], obj["id"])


def test_broker_outage_stops_reading_and_resumes_when_it_returns(
    store: BookmarkStore, read_topic: Reader, consumer_conf: dict[str, Any]
) -> None:
    from auditstream.embedded import TansuBroker

    port = free_port()
    events = make_events(30)
    source = FakeSource(events)
    kafka = producer_config(f"127.0.0.1:{port}", {"message.timeout.ms": 1500, "linger.ms": 5})
    opts = Options(
        topic="late-ev", control_topic="late-ctl", start_from="earliest", backoff_max=0.5,
        idle_min=0.05, idle_max=0.1, ack_timeout=5, heartbeat_interval=3600,
    )  # fmt: skip
    loop = Loop(source, lambda u: Publisher(kafka, u), store, SingleObjectCodec(), opts)
    thread = threading.Thread(target=loop.run)
    thread.start()
    broker = None
    try:
        threading.Event().wait(4)  # the broker is down: sends fail, the loop backs off
        assert store.load(UUID) is None  # never advanced past an unacknowledged event
        broker = TansuBroker(port=port).start()
        ensure({"bootstrap.servers": broker.bootstrap}, ["late-ev", "late-ctl"], partitions=1,
               max_message_bytes=2**24)  # fmt: skip
        for _ in range(600):
            if loop.bookmark == source.positions[-1]:
                break
            threading.Event().wait(0.05)
    finally:
        loop.stop()
        thread.join(30)
    try:
        assert store.load(UUID) == source.positions[-1]
        consumer_conf["bootstrap.servers"] = broker.bootstrap if broker else ""
        assert sorted(set(raws(read_topic("late-ev", 30)))) == sorted(events)
    finally:
        if broker is not None:
            broker.cleanup()
