r"""Steps 1-4 of the producer guarantee for one page: warnings, drop, produce, wait for acks.

``Batcher.send(page, bookmark)`` yields one ``Sent`` per batch as soon as it is produced (steps
1-3), without waiting; ``settle(sent)`` waits for that batch's acknowledgements (step 4) and
returns the position the bookmark may move to and the hash-chain state at that position
(``(None, None)`` when the batch held only gap events). The loop keeps a bounded number of
batches between the two and settles them strictly in the order they were sent.
``batches(page, bookmark)`` is both in one step (one batch in flight).

Every published event and gap is a link of the server's hash chain (docs/tamper-evidence.md,
``auditstream.chain``), in log order, linked through the loop's ``Linker`` (``producer.linker``,
the one holder of the chain state). Traps:

- The chain must be a function of the log, not of sends: a re-send after a crash or a broker
  outage must carry the hash it had the first time. So the state a ``Sent`` carries (stored
  with the bookmark) is the linker's mark right after the element AT the bookmark (a trailing
  gap is re-found and re-linked on the same predecessor); after a failure the loop rewinds the
  linker to the stored state.
- A skipped-event warning names the event's position when the server says it (the emulator
  does); its gap is linked right before the first event after that position, so a re-read that
  starts mid-page links it identically. A warning without a position is linked at page start.
- Step 2 drops by position, but an unidentifiable element has none: it is kept only when the
  last identified event before it was at or after the bookmark.
- With batches in flight the chain head is ahead of every unsettled batch: each ``Sent``
  carries the state at its own last element, and a rewind after any failure goes back to the
  stored state (the in-flight batches are read, linked and sent again, with the same hashes).
- An event is linked (``Linker.commit``) only once the client accepted its message; one that
  is too large or cannot be encoded becomes a gap at its own place instead.
- ``raw`` goes out exactly as read; when a flat field cannot be encoded (a lone surrogate from a
  ``\ud800`` escape), only the flat copy is scrubbed, never ``raw``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

from auditstream import metrics
from auditstream.chain import ChainState
from auditstream.position import Position
from producer.control import Control
from producer.linker import Linker
from producer.page import Event, Page, Prepare
from producer.publisher import Delivery, MessageTooLarge, Publisher
from schemas import fused, registry
from schemas.codec import SINGLE_OBJECT_MARKER, Codec, SingleObjectCodec
from schemas.compiled import Fallback, Unsupported
from schemas.mapping import InvalidEventError, to_record
from schemas.registry import AUDIT_EVENT

if TYPE_CHECKING:
    from producer.config import Options

_WARN_POS = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\D+?(\d+)")
_ENCODE_ERRORS = (InvalidEventError, ValueError, TypeError, OverflowError)
Skipped = tuple[Position | None, str]


class Sent(NamedTuple):
    """A produced batch: where the bookmark may move once its ``delivery`` is acknowledged."""

    last: Position | None
    chain: ChainState | None
    events: int
    delivery: Delivery


class Batcher:
    """Publish one server's pages in acknowledged, chained batches.

    Args:
        server_uuid: the key of every message.
        codec: the framing.
        publisher: the Kafka producer adapter.
        control: gap and heartbeat events (same publisher).
        options: topic, batch size, message size limit.
        ack_timeout: seconds to wait for acks right now (shorter once stopping).
        chain: the server's chain, owned by the caller (None: a new one from genesis).
    """

    def __init__(
        self,
        server_uuid: str,
        codec: Codec,
        publisher: Publisher,
        control: Control,
        options: Options,
        ack_timeout: Callable[[], float] | None = None,
        chain: Linker | None = None,
    ) -> None:
        self.server_uuid = server_uuid
        self.publisher = publisher
        self.control = control
        self._codec = codec
        self._topic = options.topic
        self._batch = options.batch_events
        # The smaller of the setting and the client's limit, which ``ensure`` may have lowered
        # to what the topic takes: an event above it is a gap at its own place, never a
        # refusal by the broker after later events were linked.
        client = publisher.max_message_bytes
        self._max = (
            options.max_message_bytes
            if client is None
            else min(options.max_message_bytes, client - len(server_uuid))
        )
        self._buffer = options.read_buffer_size
        self._timeout = ack_timeout or (lambda: options.ack_timeout)
        self.chain = chain or Linker(ChainState.start(server_uuid))
        self._reported: set[Skipped] = set()
        self._prev: Position | None = None
        self._past = True
        self._bookmark: Position | None = None
        self._missing: Position | None = None
        self._reason = "missing_bookmark"
        self.sent = 0

    def prepare(self) -> Prepare | None:
        """What the page split encodes each event with while it is parsed (``Event.prefix``).

        The message value up to the chain fields, which ``_send`` completes with
        ``fused.event_tail`` once the event is linked: the same bytes as
        ``codec.encode_event`` (property-tested). Single-object framing only (None for any
        other codec); an event it cannot encode keeps its parsed object for ``_send``.
        """
        found = _prefix_encoder() if type(self._codec) is SingleObjectCodec else None
        if found is None:
            return None
        encode, header = found
        uuid = self.server_uuid

        def prepare(raw: bytes, obj: dict[str, Any]) -> bytes | None:
            try:
                return encode(uuid, raw, obj, None, None, header)
            except Fallback:
                return None

        return prepare

    def begin_sequence(
        self, bookmark: Position | None, missing: Position | None, reason: str
    ) -> None:
        """A positioned read starts; ``missing`` is the bookmark when its event is gone."""
        self._bookmark = bookmark
        self._prev = bookmark
        self._past = bookmark is None
        self._missing = missing
        self._reason = reason

    def end_sequence(self) -> None:
        """The sequence ended; a missing bookmark with nothing after it waits for the next."""
        self._missing = None

    def rewind(self) -> None:
        """After a failure: forget what was not acknowledged (the caller rewinds the chain)."""
        self._reported.clear()
        self.publisher.reset()

    def batches(
        self, page: Page, bookmark: Position | None
    ) -> Iterator[tuple[Position | None, ChainState | None]]:
        """Publish ``page``; yield the bookmark and chain state of each acknowledged batch.

        Raises:
            DeliveryError: a message was not acknowledged (nothing yielded for that batch).
            BrokerError: the client refused a message.
        """
        for sent in self.send(page, bookmark):
            yield self.settle(sent)

    def settle(self, sent: Sent) -> tuple[Position | None, ChainState | None]:
        """Step 4: wait for the acks of ``sent``; return its bookmark and chain state.

        Raises:
            DeliveryError: a message of this batch was not acknowledged.
        """
        self._wait(sent.delivery, sent.events)
        return sent.last, sent.chain

    def send(self, page: Page, bookmark: Position | None) -> Iterator[Sent]:
        """Steps 1-3 for ``page``: yield each batch once produced (not yet acknowledged).

        ``bookmark`` is the position the read sequence started from (step 2 drops up to it).

        Raises:
            BrokerError: the client refused a message.
        """
        metrics.PAGES.labels(self.server_uuid).inc()
        metrics.EVENTS_READ.labels(self.server_uuid).inc(len(page.events))
        if page.nbytes:
            metrics.PAGE_FILL.labels(self.server_uuid).observe(page.nbytes / self._buffer)
        # Step 1: every warning of the call is a skipped event.
        skipped = self._skipped(page.warnings, bookmark)
        # Step 2: drop what the bookmark already covers (the read is inclusive).
        kept: list[Event] = []
        for event in page.events:
            pos = event.pos
            if pos is None:
                if self._past:
                    kept.append(event)
                continue
            if bookmark is None or pos > bookmark:
                kept.append(event)
                self._past = True
            else:
                self._past = pos >= bookmark
                self._prev = pos
        for text in [text for at, text in skipped if at is None]:
            self._gap_skipped(None, text)
        pending = sorted((s for s in skipped if s[0] is not None), key=lambda s: s[0] or ())
        if not kept:
            for at, text in pending:
                self._gap_skipped(at, text)
            if skipped:
                yield Sent(None, None, 0, self.publisher.cut())
            return
        size = self._batch or len(kept)
        for i in range(0, len(kept), size):
            last, state, count = self._send(kept[i : i + size], pending, i + size >= len(kept))
            # Step 4 is the caller's: settle() this batch, in order, before bookmarking it.
            yield Sent(last, state, count, self.publisher.cut())

    def _send(
        self, chunk: list[Event], pending: list[Skipped], final: bool
    ) -> tuple[Position | None, ChainState | None, int]:
        # Step 3: encode and produce; what cannot be published becomes a gap in this batch.
        last: Position | None = None
        state: ChainState | None = None  # the mark right after ``last`` (taken when needed)
        count = 0
        publisher, topic, codec, uuid = self.publisher, self._topic, self._codec, self.server_uuid
        chain, tail = self.chain, fused.event_tail
        for event in chunk:
            pos = event.pos
            if pos is None:
                if state is None and last is not None:
                    state = chain.mark()  # before this gap: the bookmark cannot pass it
                self._gap_for("invalid_event", event, self._prev, event.error)
                continue
            state = None
            while pending and (pending[0][0] or pos) < pos:
                self._gap_skipped(*pending.pop(0))
            if self._missing is not None:
                self._gap(self._reason, start=self._missing, end=pos)
                self._missing = None
            value: bytes | None = None
            # ``data``: the event's bytes as the page held them (no decode, no re-encode).
            data = event.data
            # Proposed, not linked: linked (commit) only once the client accepts the message.
            link = chain.propose(pos.ts, pos.id, data)
            prefix = event.prefix
            if prefix is not None:
                # Encoded while the page was parsed (``prepare``): only the link is added.
                value = prefix + tail(link, chain.seq + 1)
            else:
                try:
                    # Fused: the parsed event straight to its message value, the same bytes as
                    # encode(to_record(...)) (schemas/fused.py; equality is property-tested).
                    value = codec.encode_event(
                        uuid, data, event.obj, topic, chain=link, chain_seq=chain.seq + 1
                    )
                except _ENCODE_ERRORS as exc:
                    value = self._encode_scrubbed(event, link, exc)
            # The parsed object is done with; the event itself stays referenced until its ack
            # (a refused one becomes a gap from raw), so pages in flight keep only their text.
            event.obj = None
            if value is not None:
                if len(value) > self._max:
                    self._gap_for("too_large_for_topic", event, pos, f"{len(value)} bytes")
                else:
                    try:
                        publisher.send(topic, value, event)
                        chain.commit()
                        count += 1
                    except MessageTooLarge as exc:
                        self._gap_for("too_large_for_topic", event, pos, exc.message)
            last = self._prev = pos
        if state is None and last is not None:
            state = chain.mark()  # before the trailing gaps, for the same reason
        if final:
            while pending:
                self._gap_skipped(*pending.pop(0))
        metrics.EVENTS_PUBLISHED.labels(uuid).inc(count)  # once per batch: labels() is slow
        return last, state, count

    def _encode_scrubbed(self, event: Event, link: str, exc: Exception) -> bytes | None:
        try:
            record = to_record(
                self.server_uuid, event.raw, event.obj, chain=link, chain_seq=self.chain.seq + 1
            )
            record = {k: v if k == "raw" else _scrub(v) for k, v in record.items()}
            return self._codec.encode(AUDIT_EVENT, record, self._topic)
        except _ENCODE_ERRORS:
            self._gap_for("invalid_event", event, event.pos, f"{type(exc).__name__}: {exc}")
            return None

    def _wait(self, delivery: Delivery, count: int) -> None:
        refused = self.publisher.wait_for(delivery, self._timeout())
        for event in refused:
            # The broker refused a message the client accepted (topic limit below the client's):
            # the event's link is already in the chain, so a verifier will see it missing. The
            # gap links at the chain head (after the batches still in flight, if any).
            self._gap_for("too_large_for_topic", event, event.pos, "refused by the broker")
        if refused:
            self.publisher.wait_for(self.publisher.cut(), self._timeout())
        acked = count - len(refused)
        self.sent += acked
        metrics.EVENTS_ACKED.labels(self.server_uuid).inc(acked)

    def _gap_for(
        self, reason: str, event: Event, start: Position | None, detail: str | None
    ) -> None:
        self._gap(
            reason,
            start=start,
            end=event.pos,
            events=1,
            size=event.size(),
            sha256=event.sha256(),
            detail=detail,
        )

    def _gap_skipped(self, at: Position | None, text: str) -> None:
        self._gap("oversized", start=at or self._prev, end=at, events=1, detail=text)

    def _gap(self, reason: str, **fields: Any) -> None:
        self.control.gap(reason, self._bookmark, chain=self.chain, **fields)

    def _skipped(self, warnings: list[str], bookmark: Position | None) -> list[Skipped]:
        """The page's warnings not reported yet (a re-read repeats them) and not covered."""
        out: list[Skipped] = []
        for text in warnings:
            found = _WARN_POS.search(text)
            at = Position(found[1], int(found[2])) if found else None
            if at is not None and bookmark is not None and at <= bookmark:
                continue
            key = (at or self._prev, text)
            if key in self._reported:
                continue
            if len(self._reported) > 10_000:
                self._reported.clear()
            self._reported.add(key)
            out.append((at, text))
        return out


@lru_cache(maxsize=1)
def _prefix_encoder() -> tuple[fused.EventEncoder, bytes] | None:
    """The fused prefix encoder and the single-object header of the current audit_event."""
    schema = registry.current(AUDIT_EVENT)
    try:
        encode = fused.compile_event_prefix_encoder(schema)
    except Unsupported:
        return None
    return encode, SINGLE_OBJECT_MARKER + registry.fingerprint64(schema)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value
