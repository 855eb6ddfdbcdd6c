"""The read loop: audit_log_read pages into Kafka, bookmark only after acks.

The producer guarantee (design.md), batch by batch (a page, or ``batch_events`` events), with
at most ``pages_in_flight`` batches sent and not yet acknowledged:

1. Read a page (``audit_log_read``), then ``SHOW WARNINGS``; skipped (oversized) events become
   a gap control event, never silence.
2. Drop events at or before the stored bookmark: the bookmark read is INCLUSIVE, the first
   event returned was already sent.
3. Encode each event and produce it (``acks=all``, idempotence on, key = server_uuid), linked
   into the server's hash chain in log order (``Linker``, the one holder of the chain state:
   an event is linked once the client accepts its message). Events that cannot be published
   (too large, unidentifiable) become gap events in the same batch, linked at their own place.
   While up to ``pages_in_flight`` batches await their acks, the next page is read and sent.
4. Settle the batches strictly in the order they were sent: wait until every message of the
   oldest batch is acknowledged. Any delivery error: do not advance, drop every batch still in
   flight (acknowledged or not), rewind the chain to the stored state and re-read from the
   bookmark.
5. Only then upsert the bookmark ``{server_uuid, ts, id}`` of that batch's last event, with the
   chain state right after that event (the batch's mark), then tell the ``Linker`` it is
   stored: the stored bookmark is never ahead of the acks, even when later batches were
   acknowledged first.
6. A crash after 3 and before 5 re-sends at most the batches in flight (``pages_in_flight``;
   one batch when it is 1), with the same hashes; every event carries
   ``(server_uuid, timestamp, id)``, so a subscriber can drop the duplicates.

Traps: a bookmark that no longer exists is detected when the first event of a positioned read
is not the bookmarked one (or, on Percona, a ``[null]`` page while newer events exist; then the
loop re-reads with ``start`` and de-duplicates). Retriable errors (source lost, broker down)
re-open from the bookmark after a capped, jittered backoff, and the batches in flight are
forgotten (sent again, linked exactly as the first time); the bookmark store failing after the
acks is retried in place, without reading further. Stopping settles and bookmarks what is in
flight and sends nothing more. The client is held to
the topics' own ``max.message.bytes`` (``publisher.ensure``), so an event that does not fit is a
gap at its place; only a topic limit lowered while running lets the broker refuse an event the
client accepted, which was already linked: its gap then links at the chain head, after it
(docs/producer.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from auditstream.chain import ChainState
from auditstream.errors import ArchiveError, AuditStreamError, BrokerError, SourceConfigError
from auditstream.position import Position, position_text
from producer.batch import Batcher, Sent
from producer.bookmark import Stored
from producer.config import Options
from producer.control import Control
from producer.linker import Linker
from producer.page import Page
from producer.publisher import Publisher
from producer.retry import Backoff
from producer.seal import Seal
from producer.source import MySQLSource, Source
from schemas.codec import Codec

log = logging.getLogger(__name__)

EARLIEST = "1970-01-01 00:00:00"
#: Stored for ``latest`` on an empty log: "everything written from now on is new".
ORIGIN = Position(EARLIEST, 0)


class BookmarkStore(Protocol):
    """What the loop needs from the bookmark store (``producer.bookmark.BookmarkStore``)."""

    def load_state(self, server_uuid: str) -> Stored | None:
        """The stored bookmark and chain state, or None."""
        ...

    def store(self, server_uuid: str, position: Position, chain: ChainState | None = None) -> None:
        """Upsert the bookmark with the chain state at it."""
        ...


class Loop:
    """Stream one audited server until ``stop()`` (or, with ``once``, the end of the log).

    Args:
        source: the audited server (``connect()`` is called, and again after failures).
        publisher_for: builds the publisher for a server_uuid (the message key).
        store: the bookmark store.
        codec: the framing of both topics.
        options: the knobs.
        seal: signed checkpoints and skips (``producer.seal``); None: neither.
    """

    def __init__(
        self,
        source: Source,
        publisher_for: Callable[[str], Publisher],
        store: BookmarkStore,
        codec: Codec,
        options: Options,
        seal: Seal | None = None,
    ) -> None:
        self._source = source
        self._seal = seal
        self._publisher_for = publisher_for
        self._store = store
        self._codec = codec
        self._opts = options
        self._stopping = threading.Event()
        self._deadline = float("inf")
        self._backoff = Backoff(options.backoff_max, self._stopping)
        self._next_heartbeat = 0.0
        self._newest: Position | None = None
        self._start_ts = options.start_timestamp or EARLIEST
        self._connected = False
        self._in_flight: deque[Sent] = deque()
        self.bookmark: Position | None = None
        self.batcher: Batcher | None = None
        #: The server's hash chain (built at start from the stored state).
        self.chain: Linker | None = None

    def healthy(self) -> bool:
        """Readiness: started, and the last attempt did not fail (source, broker, store)."""
        return self.batcher is not None and self._backoff.failures == 0

    def stop(self) -> None:
        """Stop reading; the batches in flight are acknowledged and bookmarked (signal-safe)."""
        if not self._stopping.is_set():
            self._deadline = time.monotonic() + self._opts.shutdown_timeout
            self._stopping.set()

    def run(self) -> None:
        """Run until stopped.

        Raises:
            AuditStreamError: a non-retriable error (or any error with ``once``).
        """
        batcher = self._retrying(self._start)
        if batcher is None:
            return
        idle = self._opts.idle_min
        first = True
        while not self._stopping.is_set():
            try:
                moved = self._drain(batcher, first)
                first = False
                self._heartbeat(batcher, in_sequence=False)
            except AuditStreamError as exc:
                self._recover(exc, batcher)
                continue
            self._backoff.reset()
            if self._opts.once:
                return
            idle = self._opts.idle_min if moved else min(idle * 2, self._opts.idle_max)
            self._stopping.wait(idle)

    def _start(self) -> Batcher:
        self._source.connect()
        self._connected = True
        uuid = self._source.server_uuid
        publisher = self._publisher_for(uuid)
        control = Control(uuid, self._codec, publisher, self._opts.control_topic)
        stored = self._store.load_state(uuid)
        chain = ChainState.start(uuid)
        if stored is not None:
            self.bookmark, chain = stored
            if self.bookmark == ORIGIN:
                self.bookmark, self._start_ts = None, EARLIEST
        elif self._opts.start_from == "latest":
            # Like the predecessor: the newest event counts as sent; stream what follows. On an
            # empty log, remember that everything from now on is new (else the next start
            # would skip what was written meanwhile). The chain starts at genesis.
            newest = self._source.latest()
            self._store.store(uuid, newest or ORIGIN, chain)
            self.bookmark = newest
            self._start_ts = EARLIEST
        if self._seal is not None:
            chain = self._seal.start(uuid, publisher, chain)  # skips asked by bookmark set
        log.info(
            "starting",
            extra={"ctx": {"server_uuid": uuid, "bookmark": position_text(self.bookmark)}},
        )
        self.chain = Linker(chain)
        self.batcher = Batcher(
            uuid, self._codec, publisher, control, self._opts, self._ack_timeout, self.chain
        )
        if isinstance(self._source, MySQLSource):
            self._source.prepare = self.batcher.prepare()  # encode while parsing
        return self.batcher

    def _ack_timeout(self) -> float:
        if self._stopping.is_set():
            return max(0.1, self._deadline - time.monotonic())
        return self._opts.ack_timeout

    def _drain(self, batcher: Batcher, first_open: bool) -> int:
        """Read from the bookmark to the end of the log; return the number of events sent."""
        sent_before = batcher.sent
        if not self._connected:
            self._source.connect()
            self._connected = True
            if self._source.server_uuid != batcher.server_uuid:
                raise SourceConfigError(
                    "the source is now another server (server_uuid changed): one producer "
                    "per audited server",
                    server_uuid=batcher.server_uuid,
                    now=self._source.server_uuid,
                )
        bookmark = self.bookmark
        if bookmark is None:
            page = self._source.open_at(self._start_ts)
            missing: Position | None = None
        else:
            page = self._source.open(bookmark)
            missing = self._missing_bookmark(page, bookmark)
            if missing is not None and not any(e.pos for e in page.events):
                # Percona answers a vanished bookmark with [null]: re-read from its second.
                page = self._source.open_at(bookmark.ts)
        reason = "rotated_away" if first_open else "missing_bookmark"
        batcher.begin_sequence(bookmark, missing, reason)
        while True:
            # Step 1: the page and its warnings (Source read both).
            self._process(batcher, page, bookmark)
            if page.exhausted or self._stopping.is_set():
                break
            self._heartbeat(batcher, in_sequence=True)
            # Only the batches in flight hold (parts of) earlier pages: free this one first.
            del page
            page = self._source.next()
        self._settle(batcher, 0)
        self._checkpoint(batcher, final=self._opts.once or self._stopping.is_set())
        batcher.end_sequence()
        return batcher.sent - sent_before

    def _missing_bookmark(self, page: Page, bookmark: Position) -> Position | None:
        """The bookmark, when the positioned read shows that its event no longer exists."""
        first = next((e.pos for e in page.events if e.pos is not None), None)
        if first is None:
            newest = self._source.latest() if page.exhausted else None
            return bookmark if newest is not None and newest > bookmark else None
        return bookmark if first > bookmark else None

    def _process(self, batcher: Batcher, page: Page, bookmark: Position | None) -> None:
        # Steps 2-3 in the batcher; at most pages_in_flight batches unacknowledged.
        for sent in batcher.send(page, bookmark):
            self._in_flight.append(sent)
            self._settle(batcher, self._opts.pages_in_flight - 1)
            if self._seal is not None and self._seal.due(batcher):
                self._settle(batcher, 0)  # a checkpoint signs only what is bookmarked
                self._checkpoint(batcher)
            if self._stopping.is_set():
                return  # send nothing more; _drain settles what is in flight

    def _settle(self, batcher: Batcher, keep: int) -> None:
        """Settle the oldest batches until at most ``keep`` are in flight (steps 4-5)."""
        while len(self._in_flight) > keep:
            # Step 4: the oldest batch's acks (DeliveryError leaves it, and all after it, out).
            last, mark = batcher.settle(self._in_flight[0])
            self._in_flight.popleft()
            # Step 5: only now store the bookmark. Step 6: a crash before this upsert re-sends
            # this batch and the ones after it (at most pages_in_flight), with the same hashes.
            self._bookmark_to(batcher.server_uuid, last, mark)

    def _checkpoint(self, batcher: Batcher, final: bool = False) -> None:
        # Nothing in flight here: the seal signs the bookmarked chain (producer.seal, steps 3-5).
        if self._seal is not None and self._seal.due(batcher, final):
            self._seal.checkpoint(batcher)

    def _bookmark_to(self, uuid: str, position: Position | None, mark: ChainState | None) -> None:
        # Step 5: upsert after every ack; a failing store stops reading and is retried in place.
        if position is None or (self.bookmark is not None and position <= self.bookmark):
            return
        while True:
            try:
                self._store.store(uuid, position, mark)
                break
            except ArchiveError as exc:
                now = time.monotonic()
                if self._opts.once or now >= self._deadline:
                    raise
                log.warning("bookmark store unavailable; retrying", extra={"ctx": exc.context})
                delay = self._backoff.failed()
                if self._stopping.is_set():
                    # Stopping: keep trying until the deadline, without spinning.
                    time.sleep(min(delay, self._deadline - now))
                else:
                    self._backoff.wait(delay)
        self.bookmark = position
        if mark is not None and self.chain is not None:
            self.chain.bookmarked(mark)  # a later failure rewinds the chain to it

    def _heartbeat(self, batcher: Batcher, *, in_sequence: bool) -> None:
        now = time.monotonic()
        if now < self._next_heartbeat:
            return
        self._next_heartbeat = now + self._opts.heartbeat_interval
        if not in_sequence:
            # Not between two pages: the server's read sequence is left alone.
            self._newest = self._source.latest()
        batcher.control.heartbeat(self.bookmark, self._newest)
        # Only the heartbeat's own ack: the batches in flight stay in flight.
        publisher = batcher.publisher
        publisher.wait_for(publisher.cut(), self._opts.ack_timeout)

    def _recover(self, exc: AuditStreamError, batcher: Batcher) -> None:
        self._in_flight.clear()
        if not exc.retriable or self._opts.once:
            raise exc
        delay = self._backoff.failed()
        log.warning(
            "%s; re-opening from the bookmark in %.1fs",
            exc.message,
            delay,
            extra={"ctx": {**exc.context, "bookmark": position_text(self.bookmark)}},
        )
        # What was not bookmarked is read, linked and sent again, exactly as the first time:
        # the batches in flight too (cleared above), even those already acknowledged.
        batcher.rewind()
        if self.chain is not None:
            self.chain.rewind()
        if not isinstance(exc, BrokerError):
            self._source.close()
            self._connected = False
        self._backoff.wait(delay)

    def _retrying(self, step: Callable[[], Batcher]) -> Batcher | None:
        while not self._stopping.is_set():
            try:
                return step()
            except AuditStreamError as exc:
                if not exc.retriable or self._opts.once:
                    raise
                log.warning("cannot start: %s", exc, extra={"ctx": exc.context})
                self._source.close()
                self._backoff.wait(self._backoff.failed())
        return None
