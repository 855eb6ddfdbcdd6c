"""Producer test helpers: an honest in-memory audit source, the bookmark store, a topic reader."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from auditstream.chain import ChainState, Link
from auditstream.dsn import MySQLDsn
from auditstream.errors import SourceUnavailable
from auditstream.kafka import check
from auditstream.position import Position
from producer.bookmark import BookmarkStore
from producer.page import Page, split
from schemas import codec

SAMPLE = (
    Path(__file__).resolve().parents[3] / "shared" / "samples" / "mysql-8.0.22-commercial-audit.log"
)
UUID = "3e11fa47-71ca-11e1-9e33-c80aa9429562"


def sample_events() -> list[str]:
    """The real sample's events, as the exact JSON text the server wrote."""
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    return [line.rstrip().removesuffix(",") for line in lines if line.strip()]


def make_events(
    count: int, *, start: str = "2024-01-01 00:00:", percona: bool = False
) -> list[str]:
    """``count`` events, several per second, in the server's spacing (ids per second: Oracle)."""
    out = []
    for i in range(count):
        second = i // 3
        ts = f"{start[:-3]}{second // 60:02d}:{second % 60:02d}" if start.endswith(":") else start
        ident = i if percona else i % 3
        out.append(
            f'{{ "timestamp": "{ts}", "id": {ident}, "class": "general", "event": "status", '
            f'"connection_id": {i}, "account": {{ "user": "u{i % 7}", "host": "h" }}, '
            '"general_data": { "command": "Query", "sql_command": "select", '
            f'"query": "SELECT {i} /* é€😀 */", "status": 0 }} }}'
        )
    return out


class FakeSource:
    """An in-memory ``Source`` with audit_log_read's documented semantics.

    Oracle: a bookmark positions at the first event at or after it; events larger than the
    buffer are skipped with a warning. Percona: a bookmark must match exactly (else ``[null]``);
    oversized events come back whole. The page text goes through the real ``split``.
    """

    def __init__(
        self, events: list[str] | None = None, *, buffer: int = 32768, percona: bool = False
    ) -> None:
        self.server_uuid = UUID
        self.events: list[str] = []
        self.positions: list[Position] = []
        self.buffer = buffer
        self.percona = percona
        self.cursor: int | None = None
        self.fail_next: list[Exception] = []
        self.pages: list[str] = []  # page texts to return instead, for bad-page tests
        self.calls: list[str] = []
        self.connects = 0
        for raw in events or []:
            self.append(raw)

    def append(self, raw: str) -> None:
        obj = orjson.loads(raw)
        self.events.append(raw)
        self.positions.append(Position(obj["timestamp"], obj["id"]))

    def remove(self, upto: int) -> None:
        """Prune the first ``upto`` events (rotated and deleted)."""
        del self.events[:upto]
        del self.positions[:upto]

    def connect(self) -> None:
        self._maybe_fail("connect")
        self.connects += 1

    def open(self, bookmark: Position) -> Page:
        self._maybe_fail("open")
        if self.percona:
            found = [i for i, p in enumerate(self.positions) if p == bookmark]
            self.cursor = found[0] if found else len(self.positions)
        else:
            self.cursor = next(
                (i for i, p in enumerate(self.positions) if p >= bookmark), len(self.positions)
            )
        return self._page()

    def open_at(self, start: str) -> Page:
        self._maybe_fail("open_at")
        self.cursor = next(
            (i for i, p in enumerate(self.positions) if p.ts >= start), len(self.positions)
        )
        return self._page()

    def next(self) -> Page:
        self._maybe_fail("next")
        if self.cursor is None:
            raise SourceUnavailable("Reader not initialized", errno=3200)
        return self._page()

    def latest(self) -> Position | None:
        return self.positions[-1] if self.positions else None

    def close(self) -> None:
        self.cursor = None

    def _maybe_fail(self, call: str) -> None:
        self.calls.append(call)
        if self.fail_next:
            raise self.fail_next.pop(0)

    def _page(self) -> Page:
        assert self.cursor is not None
        if self.pages:
            return split(self.pages.pop(0))
        parts: list[str] = []
        warnings: list[str] = []
        used = 2
        while self.cursor < len(self.events):
            raw = self.events[self.cursor]
            size = len(raw.encode()) + 2
            if used + size > self.buffer:
                if size + 2 > self.buffer and not self.percona:
                    pos = self.positions[self.cursor]
                    warnings.append(
                        f"Warning 3201 audit_log_read: event {pos.ts} id {pos.id} of {size} "
                        "bytes does not fit the read buffer; skipped"
                    )
                    self.cursor += 1
                    continue
                if not (self.percona and not parts):
                    break
            parts.append(raw)
            used += size
            self.cursor += 1
        if self.cursor >= len(self.events):
            parts.append("null")
            self.cursor = None
        page = split("[\n" + ",\n".join(parts) + "\n]")
        page.warnings = warnings
        return page


@pytest.fixture
def store(mysql_db: MySQLDsn) -> Iterator[BookmarkStore]:
    """A bookmark store in this test's own database, set up."""
    bookmarks = BookmarkStore(mysql_db)
    bookmarks.setup()
    yield bookmarks
    bookmarks.close()


Reader = Callable[..., list[tuple[str, dict[str, Any], Any]]]


@pytest.fixture
def read_topic(consumer_conf: dict[str, Any]) -> Reader:
    """Read ``count`` messages of ``topic``: ``[(key, record, message)]`` (decoded)."""

    def read(
        topic: str, count: int, timeout: float = 30.0, c: codec.Codec | None = None
    ) -> list[tuple[str, dict[str, Any], Any]]:
        consumer = Consumer({**consumer_conf, "group.id": consumer_conf["group.id"] + topic})
        # assign(), not subscribe(): no group join (slow on Tansu), every partition from 0.
        deadline = time.monotonic() + timeout
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        while not partitions and time.monotonic() < deadline:
            time.sleep(0.2)
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        out: list[tuple[str, dict[str, Any], Any]] = []
        try:
            while len(out) < count and time.monotonic() < deadline:
                msg = check(consumer.poll(0.5))
                if msg is None:
                    continue
                _, record = codec.decode(msg.value(), topic, c)
                out.append((msg.key().decode(), record, msg))
            # Anything beyond ``count`` would be a bug too: look briefly for extras.
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                msg = check(consumer.poll(0.2))
                if msg is not None:
                    out.append((msg.key().decode(), codec.decode(msg.value(), topic, c)[1], msg))
        finally:
            consumer.close()
        return out

    return read


def assert_chain_intact(server_uuid: str, *streams: list[tuple[str, dict[str, Any], Any]]) -> int:
    """Recompute the server's hash chain over event and gap records; return its length.

    Copies of one link (re-sends) must repeat its hash; links must number 1..n without a hole.
    """
    links: dict[int, Link] = {}
    for stream in streams:
        for _, record, _ in stream:
            name = "audit_event" if "raw" in record else "control_event"
            link = Link.from_record(name, record)
            if link is None:
                continue
            assert link.seq is not None and link.chain is not None, "unchained link"
            seen = links.setdefault(link.seq, link)
            assert (seen.identity, seen.chain) == (link.identity, link.chain), (
                f"two different links numbered {link.seq}"
            )
    state = ChainState.start(server_uuid)
    for seq in sorted(links):
        assert seq == state.seq + 1, f"links {state.seq + 1}..{seq - 1} missing"
        state = state.advance(links[seq])
        assert state.hash == links[seq].chain, f"link {seq} does not hash to its stored value"
    return state.seq
