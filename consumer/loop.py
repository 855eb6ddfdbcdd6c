"""The consumer loop: poll → decode → one transaction → commit (design.md, consumer guarantee).

Steps:

1. On partition assignment, seek each partition to the offset stored in the archive database
   (``audit_offsets``; none stored: the partition's beginning). Kafka's committed offset is
   never read: it is only a copy for lag tools.
2. Poll a batch bounded by rows, bytes and linger time, and decode it; undecodable or invalid
   records go, bytes intact, to the dead-letter topic with the error in headers.
3. In ONE database transaction (``Sink.write``): insert the rows (only duplicates of
   ``(server_uuid, ts, id)`` skipped), skip re-sends already archived in a rotated table
   (per-server high-water marks), and store the next offsets by compare-and-set.
4. Commit; then commit the same offsets to Kafka (only so that lag is visible to Kafka tools).

A crash anywhere replays from the offsets of the last committed transaction: no loss, no
duplicate. Infrastructure failures (archive or broker down) are never dead-lettered: the loop
pauses its partitions, backs off, keeps the batch and its offsets, and retries.

Traps:

- Rebalance callbacks run inside ``consume()``/``poll()`` only, never in the middle of a write.
  On revocation the in-flight batch is finished (written) if possible, else its revoked
  partitions' messages are abandoned; a lost partition (session timeout) is abandoned at once.
  Either way the next owner starts from the archive's offsets, and compare-and-set keeps a
  member that lost a partition from overwriting newer offsets.
- With cooperative-sticky assignment, ``on_assign`` receives only the added partitions; the seek
  is done by giving them their offsets in ``incremental_assign``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException
from confluent_kafka import TopicPartition as KafkaTP

from auditstream import metrics
from auditstream.errors import AuditStreamError, BrokerError
from auditstream.kafka import check
from consumer.batch import Batch, TopicPartition
from consumer.decode import item_of, prepare
from consumer.dlq import DeadLetterQueue
from consumer.errors import Fenced
from consumer.lag import Lag
from consumer.progress import Progress
from consumer.sink import Sink
from consumer.topics import TopicWatch
from schemas.codec import Codec

log = logging.getLogger(__name__)


class PeriodicTask(Protocol):
    """Work that runs between batches (e.g. rotation); it must be quick or bounded."""

    def tick(self, now: datetime) -> None:
        """Do whatever is due at ``now`` (UTC)."""


class ConsumerLoop:
    """One group member. Build the parts in ``consumer.__main__``; tests build them directly.

    Args:
        consumer: a confluent-kafka ``Consumer`` (``auditstream.kafka.consumer_config``).
        sink: the archive writer.
        dlq: the dead-letter producer.
        codec: decodes both framings.
        topics: ``(audit topic, control topic)``.
        batch_rows, batch_bytes, batch_linger_ms: batch bounds.
        once: stop, returning 0, when every assigned partition is caught up.
        backoff_max: longest wait between retries of a failed write (s).
        tasks: periodic tasks called between batches.
        tick_interval: least time between two rounds of periodic tasks (s).
        lag: where per-partition lag is kept for the metrics module.
    """

    def __init__(
        self,
        consumer: Consumer,
        sink: Sink,
        dlq: DeadLetterQueue,
        codec: Codec,
        topics: tuple[str, str],
        *,
        batch_rows: int = 5000,
        batch_bytes: int = 32 * 1024 * 1024,
        batch_linger_ms: int = 200,
        once: bool = False,
        backoff_max: float = 30.0,
        tasks: Sequence[PeriodicTask] = (),
        tick_interval: float = 1.0,
        lag: Lag | None = None,
    ) -> None:
        self.consumer, self.sink, self.dlq, self.codec = consumer, sink, dlq, codec
        self.topics = topics
        self.batch_rows, self.batch_bytes = batch_rows, batch_bytes
        self.linger = batch_linger_ms / 1000
        self.once, self.backoff_max = once, backoff_max
        self.tasks = list(tasks)
        self.tick_interval = tick_interval
        self.lag = lag or Lag()
        self.progress = Progress(self.lag)
        self.batch = Batch()
        self._stop = False
        self._writing = False
        self._paused = False
        self._joined = False  # the first assignment (possibly empty) arrived
        self._last_tick: float | None = None
        self.topic_watch = TopicWatch(topics)

    def stop(self) -> None:
        """Ask the loop to finish the current batch and return (signal-safe)."""
        self._stop = True

    def run(self) -> int:
        """Consume until ``stop()`` (or, with ``once``, until caught up); return the exit code."""
        self._subscribe()
        try:
            while not self._stop:
                # Step 2: poll until a bound is reached (decoded when the batch is prepared).
                self._poll(self._poll_timeout())
                if self.batch and (
                    self.batch.full(self.batch_rows, self.batch_bytes)
                    or self.batch.due(self.linger)
                    or self._stop
                    or (self.once and self.progress.caught_up())
                ):
                    self.flush()
                self._tick()
                if self.once and not self.batch and self._done():
                    break
            self.flush()
        finally:
            self.consumer.close()  # revokes: _on_revoke finishes what is left
            self.dlq.close()
        return 0

    def _poll_timeout(self) -> float:
        if not self.batch or self.batch.started is None:
            return 0.5
        return max(0.0, min(0.5, self.batch.started + self.linger - time.monotonic()))

    def _poll(self, timeout: float) -> None:
        room = max(1, min(self.batch_rows - len(self.batch), 10_000))
        for msg in self.consumer.consume(room, timeout):
            self._accept(msg)
        self.progress.update_lag(self.consumer)
        if self.topic_watch.poll(self.consumer):
            self._subscribe()  # re-join with the topic that appeared (consumer/topics.py)

    def _subscribe(self) -> None:
        self.consumer.subscribe(
            list(self.topics), on_assign=self._on_assign, on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )  # fmt: skip

    def _accept(self, msg: Any) -> None:
        err = msg.error()
        if err is not None and err.code() == KafkaError._PARTITION_EOF:
            self.progress.at_end((msg.topic(), msg.partition()), msg.offset())
            return
        if err is not None and self.topic_watch.reported(msg.topic(), err.code()):
            return
        try:
            data = check(msg)
        except BrokerError as exc:
            if exc.context.get("fatal"):
                raise
            log.warning("broker: %s", exc)
            return
        if data is None:
            return
        item = item_of(data)
        if not self.progress.owns(item.tp):
            return  # revoked while in flight: the new owner reads it
        self.progress.consumed(item.tp, item.offset)
        self.batch.add(item)

    def flush(self) -> None:
        """Steps 3 and 4 for the current batch; retries infrastructure failures with backoff."""
        delay = 0.2
        paused = False
        self._writing = True
        try:
            while self.batch:
                started = time.monotonic()
                try:
                    # Step 2 (decode: a registry outage is retried like a database outage).
                    prepared = prepare(self.batch, self.topics[1], self.codec)
                    expected = self.progress.expected(prepared.next_offsets)
                    # Step 3: one transaction for rows, marks and offsets.
                    result = self.sink.write(prepared, expected, self.dlq.send)
                except Fenced as exc:
                    self._fenced(exc)
                    continue
                except AuditStreamError as exc:
                    if not exc.retriable:
                        raise
                    if self._stop:
                        log.warning("stopping: batch abandoned, offsets kept: %s", exc)
                        self.batch = Batch()
                        break
                    log.warning("write failed, retrying in %.1fs: %s", delay, exc)
                    if not paused:
                        self._pause(True)
                        paused = True
                    self._backoff(delay)
                    delay = min(delay * 2, self.backoff_max)
                    continue
                # Step 4: the database committed; now Kafka's copy, for lag tools only.
                self.progress.archived(prepared.next_offsets)
                self._commit_kafka(prepared.next_offsets)
                self.batch = Batch()
                self._count(result, time.monotonic() - started)
        finally:
            self._writing = False
            if paused:
                self._pause(False)

    def _fenced(self, exc: Fenced) -> None:
        log.warning("fenced: %s", exc)
        self.batch.drop(exc.stored)
        for tp, offset in exc.stored.items():
            if not self.progress.owns(tp):
                continue
            self.progress.assigned(tp, offset)
            target = OFFSET_BEGINNING if offset is None else offset
            try:
                self.consumer.seek(KafkaTP(tp[0], tp[1], target))
            except KafkaException as err:
                log.info("cannot seek %s (no longer assigned?): %s", tp, err)

    def _backoff(self, delay: float) -> None:
        """Wait ``delay`` seconds while serving the group (rebalances, heartbeats)."""
        end = time.monotonic() + delay
        while not self._stop and time.monotonic() < end:
            # Paused partitions deliver nothing new; anything already in flight joins the batch.
            self._poll(min(0.2, max(0.0, end - time.monotonic())))

    def _pause(self, pause: bool) -> None:
        self._paused = pause
        tps = [KafkaTP(t, p) for t, p in self.progress.stored]
        if not tps:
            return
        try:
            (self.consumer.pause if pause else self.consumer.resume)(tps)
        except KafkaException as exc:
            log.info("pause/resume failed: %s", exc)

    def _commit_kafka(self, offsets: dict[TopicPartition, int]) -> None:
        tps = [KafkaTP(t, p, o) for (t, p), o in offsets.items() if self.progress.owns((t, p))]
        if not tps:
            return
        try:
            self.consumer.commit(offsets=tps, asynchronous=True)
        except KafkaException as exc:
            log.info("Kafka commit failed (the archive's offsets are authoritative): %s", exc)

    def _count(self, result: Any, seconds: float) -> None:
        topic = self.topics[0]
        metrics.ROWS_INSERTED.labels(topic).inc(result.inserted)
        metrics.DUPLICATES_SKIPPED.labels(topic).inc(result.duplicates)
        metrics.BATCH_SECONDS.observe(seconds)
        for letter in result.dead:
            metrics.DEAD_LETTERS.labels(letter.item.topic, letter.error_class).inc()

    # ---------------------------------------------------------------- rebalance callbacks

    def _on_assign(self, consumer: Consumer, partitions: list[KafkaTP]) -> None:
        # Step 1: seek to the offsets stored in the archive (retry until it answers).
        tps = [(p.topic, p.partition) for p in partitions]
        self._joined = True
        delay = 0.2
        while True:
            try:
                stored = self.sink.stored_offsets(tps)
                break
            except AuditStreamError as exc:
                if not exc.retriable or self._stop:
                    raise
                log.warning("cannot read stored offsets, retrying: %s", exc)
                time.sleep(delay)
                delay = min(delay * 2, self.backoff_max)
        for p in partitions:
            offset = stored[(p.topic, p.partition)]
            p.offset = OFFSET_BEGINNING if offset is None else offset
            self.progress.assigned((p.topic, p.partition), offset)
        log.info("assigned %s", sorted(stored.items()))
        consumer.incremental_assign(partitions)
        if self._paused:  # assigned during a backoff: stay quiet until the batch is written
            consumer.pause(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[KafkaTP]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        if self.batch and not self._writing:
            try:
                self.flush_once()
            except AuditStreamError as exc:
                log.warning("abandoning the in-flight batch of revoked partitions: %s", exc)
        self._forget(tps)
        log.info("revoked %s", tps)

    def _on_lost(self, consumer: Consumer, partitions: list[KafkaTP]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        self._forget(tps)
        log.warning("lost %s (abandoned, not written)", tps)

    def flush_once(self) -> None:
        """One write attempt of the current batch, no retries (used while partitions go)."""
        prepared = prepare(self.batch, self.topics[1], self.codec)
        expected = self.progress.expected(prepared.next_offsets)
        try:
            result = self.sink.write(prepared, expected, self.dlq.send)
        except Fenced as exc:
            self._fenced(exc)
            return
        self.progress.archived(prepared.next_offsets)
        self._commit_kafka(prepared.next_offsets)
        self.batch = Batch()
        self._count(result, 0.0)

    def _forget(self, tps: list[TopicPartition]) -> None:
        self.batch.drop(tps)
        self.progress.forget(tps)

    # ---------------------------------------------------------------- --once, tasks

    def _done(self) -> bool:
        """``--once``: the group gave this member its share (perhaps none) and it is caught up."""
        if not self._joined:
            return False
        return not self.progress.stored or self.progress.caught_up()

    def _tick(self) -> None:
        if not self.tasks or self.batch:
            return
        now = time.monotonic()
        if self._last_tick is not None and now - self._last_tick < self.tick_interval:
            return
        self._last_tick = now
        for task in self.tasks:
            try:
                task.tick(datetime.now(UTC))
            except AuditStreamError as exc:
                if not exc.retriable:
                    raise
                log.warning("periodic task failed (will run again): %s", exc)
