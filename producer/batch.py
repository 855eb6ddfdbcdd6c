r"""Steps 1-4 of the producer guarantee for one page: warnings, drop, produce, wait for acks.

``Batcher.batches(page, bookmark)`` yields once per acknowledged batch with the position the
bookmark may move to (None when the batch held only gap events). The caller stores it
(step 5) before asking for the next batch. Traps:

- Step 2 drops by position, but an unidentifiable element has none: it is kept only when the
  last identified event before it was at or after the bookmark (so a re-read does not publish
  its gap twice, except after a crash, like any batch).
- ``raw`` goes out exactly as read; when a flat field cannot be encoded (a lone surrogate from a
  ``\\ud800`` escape), only the flat copy is scrubbed, never ``raw``.
- A skipped-event warning repeats on every re-read of the same position: it is reported once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from auditstream import metrics
from producer.control import Control
from producer.page import Event, Page, Position
from producer.publisher import MessageTooLarge, Publisher
from schemas.codec import Codec
from schemas.mapping import InvalidEventError, to_record
from schemas.registry import AUDIT_EVENT

if TYPE_CHECKING:
    from producer.loop import Options

_WARN_TS = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\D+?(\d+)")
_ENCODE_ERRORS = (InvalidEventError, ValueError, TypeError, OverflowError)


class Batcher:
    """Publish one server's pages in acknowledged batches.

    Args:
        server_uuid: the key of every message.
        codec: the framing.
        publisher: the Kafka producer adapter.
        control: gap and heartbeat events (same publisher).
        options: topic, batch size, message size limit.
        ack_timeout: seconds to wait for acks right now (shorter once stopping).
    """

    def __init__(
        self,
        server_uuid: str,
        codec: Codec,
        publisher: Publisher,
        control: Control,
        options: Options,
        ack_timeout: Callable[[], float] | None = None,
    ) -> None:
        self.server_uuid = server_uuid
        self.publisher = publisher
        self.control = control
        self._codec = codec
        self._topic = options.topic
        self._batch = options.batch_events
        self._max = options.max_message_bytes
        self._timeout = ack_timeout or (lambda: options.ack_timeout)
        self._reported: set[tuple[Position | None, str]] = set()
        self._prev: Position | None = None
        self._past = True
        self._bookmark: Position | None = None
        self._missing: Position | None = None
        self._reason = "missing_bookmark"
        self.sent = 0

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

    def batches(self, page: Page, bookmark: Position | None) -> Iterator[Position | None]:
        """Publish ``page``; yield the last position of each acknowledged batch.

        Raises:
            DeliveryError: a message was not acknowledged (nothing yielded for that batch).
            BrokerError: the client refused a message.
        """
        metrics.PAGES.labels(self.server_uuid).inc()
        metrics.EVENTS_READ.labels(self.server_uuid).inc(len(page.events))
        # Step 1: every warning of the call is a skipped event.
        gaps = self._warnings(page.warnings)
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
        if not kept:
            if gaps:
                self._wait(0)
                yield None
            return
        size = self._batch or len(kept)
        for i in range(0, len(kept), size):
            last, count = self._send(kept[i : i + size])
            # Step 4: every message of the batch acknowledged, or DeliveryError.
            self._wait(count)
            yield last

    def _send(self, chunk: list[Event]) -> tuple[Position | None, int]:
        # Step 3: encode and produce; what cannot be published becomes a gap in this batch.
        last = None
        count = 0
        publisher, topic, codec, uuid = self.publisher, self._topic, self._codec, self.server_uuid
        for event in chunk:
            pos = event.pos
            if pos is None:
                self._gap_for("invalid_event", event, self._prev, event.error)
                continue
            if self._missing is not None:
                self.control.gap(self._reason, self._bookmark, start=self._missing, end=pos)
                self._missing = None
            value: bytes | None
            try:
                value = codec.encode(AUDIT_EVENT, to_record(uuid, event.raw, event.obj), topic)
            except _ENCODE_ERRORS as exc:
                value = self._encode_scrubbed(event, exc)
            if value is not None:
                if len(value) > self._max:
                    self._gap_for("too_large_for_topic", event, pos, f"{len(value)} bytes")
                else:
                    try:
                        publisher.send(topic, value, event)
                        count += 1
                    except MessageTooLarge as exc:
                        self._gap_for("too_large_for_topic", event, pos, exc.message)
            last = self._prev = pos
        return last, count

    def _encode_scrubbed(self, event: Event, exc: Exception) -> bytes | None:
        try:
            record = to_record(self.server_uuid, event.raw, event.obj)
            record = {k: v if k == "raw" else _scrub(v) for k, v in record.items()}
            return self._codec.encode(AUDIT_EVENT, record, self._topic)
        except _ENCODE_ERRORS:
            self._gap_for("invalid_event", event, event.pos, f"{type(exc).__name__}: {exc}")
            return None

    def _wait(self, count: int) -> None:
        refused = self.publisher.wait(self._timeout())
        for event in refused:
            self._gap_for("too_large_for_topic", event, event.pos, "refused by the broker")
        if refused:
            self.publisher.wait(self._timeout())
        acked = count - len(refused)
        self.sent += acked
        metrics.EVENTS_ACKED.labels(self.server_uuid).inc(acked)

    def _gap_for(
        self, reason: str, event: Event, start: Position | None, detail: str | None
    ) -> None:
        self.control.gap(
            reason,
            self._bookmark,
            start=start,
            end=event.pos,
            events=1,
            size=event.size(),
            sha256=event.sha256(),
            detail=detail,
        )

    def _warnings(self, warnings: list[str]) -> int:
        count = 0
        for text in warnings:
            found = _WARN_TS.search(text)
            at = Position(found[1], int(found[2])) if found else None
            key = (at or self._prev, text)
            if key in self._reported:
                continue
            if len(self._reported) > 10_000:
                self._reported.clear()
            self._reported.add(key)
            self.control.gap(
                "oversized", self._bookmark, start=at or self._prev, end=at, events=1, detail=text
            )
            count += 1
        return count


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value
