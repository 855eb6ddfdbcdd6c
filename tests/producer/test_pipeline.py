"""Pages in flight: the bookmark follows the acks in order, and a crash re-sends at most them.

Real broker (Tansu), real bookmark store (MariaDB), the emulator for ``kill -9`` and the
in-memory ``FakeSource`` (real splitter) for the delivery failure. Tansu creates unknown topics
and does not enforce a topic's ``max.message.bytes``, so it never fails one message while
acknowledging the next: that one delivery report is turned into an error by ``DoomedPublisher``
(the message itself really went to the broker; everything else is real).
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError

from auditstream.errors import DeliveryError
from auditstream.kafka import producer_config
from auditstream.position import Position
from emulator.traffic import write_events
from producer.bookmark import BookmarkStore
from producer.config import Options
from producer.loop import EARLIEST, Loop
from producer.page import Event
from producer.publisher import Delivery, Publisher
from schemas.codec import SingleObjectCodec
from tests.harness.emulator_fixtures import EmulatorHandle
from tests.producer.conftest import UUID, FakeSource, assert_chain_intact, make_events
from tests.producer.test_crash import assert_complete_with_bounded_duplicates, pos, spawn
from tests.producer.test_e2e import log_lines
from tests.producer.test_loop import make_loop, raws

Reader = Callable[..., list[tuple[str, dict[str, Any], Any]]]
IN_FLIGHT = 4
BATCH = 40


@pytest.fixture
def topics(unique_name: Callable[[str], str]) -> tuple[str, str]:
    return unique_name("ev"), unique_name("ctl")


def test_kill_9_with_pages_in_flight_loses_nothing_and_the_bookmark_trails_the_acks(
    emulator: EmulatorHandle,
    mysql_server: Any,
    bootstrap: str,
    topics: tuple[str, str],
    read_topic: Reader,
    tmp_path: Path,
) -> None:
    rng = random.Random(14)
    store = BookmarkStore(mysql_server.dsn)
    store.setup()
    start = datetime(2024, 9, 1, tzinfo=UTC)
    write_events(emulator.writer, 4000, seed=14, start=start)
    log = tmp_path / "producer.log"
    # Small batches, several of them in flight: a kill lands with pages unacknowledged.
    extra = ("--pages-in-flight", str(IN_FLIGHT), "--batch-events", str(BATCH))
    stored: set[Position | None] = set()
    trials = 3
    for trial in range(trials):
        before = store.load(emulator.server_uuid)
        proc = spawn(emulator, bootstrap, topics, log, *extra)
        deadline = time.monotonic() + 30
        while store.load(emulator.server_uuid) == before and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))
        proc.kill()
        proc.wait(10)
        bookmark = store.load(emulator.server_uuid)
        assert bookmark is not None and bookmark != before, "the kill did not land mid-stream"
        stored.add(bookmark)
        # Never ahead of the acks: every event up to the stored bookmark is in the topic.
        expected = log_lines(emulator.log_dir)
        upto = [pos(r) for r in expected].index(bookmark) + 1
        got = {r["raw"] for _, r, _ in read_topic(topics[0], upto, timeout=30)}
        missing = [r for r in expected[:upto] if r not in got]
        assert not missing, f"bookmark {bookmark} is ahead of the acks ({len(missing)} missing)"
        more = start + timedelta(hours=trial + 1)
        write_events(emulator.writer, rng.randint(50, 300), seed=trial, start=more)
    final = spawn(emulator, bootstrap, topics, log, *extra, "--once")
    assert final.wait(120) == 0, log.read_text(errors="replace")[-3000:]
    expected = log_lines(emulator.log_dir)
    messages = read_topic(topics[0], len(expected), timeout=60)
    got_raws = [r["raw"] for _, r, _ in messages]
    assert_complete_with_bounded_duplicates(got_raws, expected, stored)
    # Each kill re-sent at most the batches in flight.
    assert len(got_raws) - len(expected) <= trials * IN_FLIGHT * BATCH
    assert assert_chain_intact(emulator.server_uuid, messages) == len(expected)
    assert store.load(emulator.server_uuid) == pos(expected[-1])


class DoomedPublisher(Publisher):
    """The real publisher; the broker's report for the event at ``doomed`` becomes an error.

    Before the doomed batch's outcome is read, every later message is acknowledged (so the
    batches after it really were acked first). Records which events were reported acked.
    """

    def __init__(self, conf: dict[str, Any], key: str, doomed: Position) -> None:
        super().__init__(conf, key)
        self.doomed: Position | None = doomed
        self.acked_at: list[Position] = []
        self.rewound = False
        self._doomed_in: Delivery | None = None

    def reset(self) -> None:
        self.rewound = True  # the loop saw a failure and drops what is in flight
        super().reset()

    def send(self, topic: str, value: bytes, ref: Any = None) -> None:
        if isinstance(ref, Event) and ref.pos == self.doomed:
            self._doomed_in = self._current
        super().send(topic, value, ref)

    def wait_for(self, delivery: Delivery, timeout: float) -> list[Any]:
        if delivery is self._doomed_in:
            assert self._producer.flush(timeout) == 0  # the batches after it: acked too
        return super().wait_for(delivery, timeout)

    def _delivered(self, delivery: Delivery, ref: Any, err: KafkaError | None, msg: Any) -> None:
        if isinstance(ref, Event) and ref.pos is not None and err is None:
            if ref.pos == self.doomed:
                self.doomed = None  # fails once
                err = KafkaError(KafkaError._MSG_TIMED_OUT)
            else:
                self.acked_at.append(ref.pos)
        super()._delivered(delivery, ref, err, msg)


def pages_of(source: FakeSource) -> list[list[Position]]:
    """The positions of each page a read from the start returns."""
    pages = [source.open_at(EARLIEST)]
    while not pages[-1].exhausted:
        pages.append(source.next())
    return [[e.pos for e in page.events if e.pos is not None] for page in pages]


def test_a_failed_delivery_in_page_n_keeps_the_bookmark_at_n_minus_1_though_n_plus_1_was_acked(
    store: BookmarkStore, bootstrap: str, topics: tuple[str, str], read_topic: Reader
) -> None:
    events = make_events(150)
    source = FakeSource(events, buffer=4096)
    pages = pages_of(source)
    assert len(pages) >= 6
    n = 3  # page N (0-based): fails in its middle while N+1 is in flight
    doomed = pages[n][len(pages[n]) // 2]
    kafka = producer_config(bootstrap, {"linger.ms": 5})
    made: list[DoomedPublisher] = []

    def publisher_for(uuid: str) -> Publisher:
        made.append(DoomedPublisher(kafka, uuid, doomed))
        return made[-1]

    opts = Options(
        topic=topics[0], control_topic=topics[1], start_from="earliest", once=True,
        pages_in_flight=2, heartbeat_interval=3600, ack_timeout=20,
    )  # fmt: skip
    loop = Loop(source, publisher_for, store, SingleObjectCodec(), opts)
    with pytest.raises(DeliveryError, match="not delivered"):
        loop.run()
    assert set(pages[n + 1]) <= set(made[0].acked_at)  # page N+1 was acknowledged ...
    assert store.load(UUID) == pages[n - 1][-1]  # ... and the bookmark ends page N-1
    assert loop.bookmark == pages[n - 1][-1]

    # A restart resumes from there: pages N and N+1 go out again, nothing else twice.
    make_loop(source, store, bootstrap, topics, pages_in_flight=2).run()
    assert store.load(UUID) == source.positions[-1]
    index = {p: i for i, p in enumerate(source.positions)}
    first, last = index[pages[n][0]], index[pages[n + 1][-1]]
    messages = read_topic(topics[0], len(events) + last + 1 - first)
    got = raws(messages)
    assert sorted(set(got)) == sorted(events)
    twice = {e for e in got if got.count(e) > 1}
    assert twice == set(events[first : last + 1])
    assert all(got.count(e) == 2 for e in twice)
    # The re-sent pages carry the hashes they had the first time.
    assert assert_chain_intact(UUID, messages) == len(events)


def test_a_failed_delivery_rewinds_in_place_and_resends_the_pages_in_flight(
    store: BookmarkStore, bootstrap: str, topics: tuple[str, str], read_topic: Reader
) -> None:
    events = make_events(150)
    source = FakeSource(events, buffer=4096)
    pages = pages_of(source)
    n = 2
    kafka = producer_config(bootstrap, {"linger.ms": 5})
    made: list[DoomedPublisher] = []
    stored: list[tuple[Position, bool]] = []  # (bookmark, stored after the failure)

    def publisher_for(uuid: str) -> Publisher:
        made.append(DoomedPublisher(kafka, uuid, pages[n][1]))
        return made[-1]

    class Recording:
        def load_state(self, server_uuid: str) -> Any:
            return store.load_state(server_uuid)

        def store(self, server_uuid: str, position: Position, chain: Any = None) -> None:
            store.store(server_uuid, position, chain)
            stored.append((position, made[0].rewound))

    opts = Options(
        topic=topics[0], control_topic=topics[1], start_from="earliest", once=False,
        pages_in_flight=3, heartbeat_interval=3600, ack_timeout=20, backoff_max=0.2,
        idle_min=0.01, idle_max=0.05,
    )  # fmt: skip
    loop = Loop(source, publisher_for, Recording(), SingleObjectCodec(), opts)
    thread = threading.Thread(target=loop.run)
    thread.start()
    try:
        for _ in range(400):
            if loop.bookmark == source.positions[-1]:
                break
            threading.Event().wait(0.05)
    finally:
        loop.stop()
        thread.join(30)
    assert not thread.is_alive()
    assert made[0].doomed is None and made[0].rewound  # the failure happened
    # Before the failure: page ends up to N-1, never past page N although N+1 and N+2 were
    # acked; after it: forward only, to the end.
    before = [p for p, after in stored if not after]
    assert before == [page[-1] for page in pages[:n]]
    positions = [p for p, _ in stored]
    assert all(a < b for a, b in itertools.pairwise(positions))
    assert positions[-1] == source.positions[-1]
    index = {p: i for i, p in enumerate(source.positions)}
    messages = read_topic(topics[0], len(events) + 3 * len(pages[n]), timeout=10)
    got = raws(messages)
    assert sorted(set(got)) == sorted(events)
    twice = {e for e in got if got.count(e) > 1}
    # Re-sent: page N and whatever was in flight behind it (at most 3 pages in all).
    assert events[index[pages[n][0]]] in twice
    resent = sorted(index[pos(e)] for e in twice)
    assert resent == list(range(index[pages[n][0]], resent[-1] + 1))
    assert resent[-1] <= index[pages[n + 2][-1]]
    assert assert_chain_intact(UUID, messages) == len(events)
