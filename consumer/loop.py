"""The consumer loop: poll → decode → one transaction → commit (design.md, consumer guarantee).

Steps:

1. On partition assignment, seek each partition to the offset stored in the archive database
   (``audit_offsets``; none stored: the partition's beginning). Kafka's committed offset is
   never read: it is only a copy for lag tools.
2. Poll a batch bounded by rows, bytes and linger time, and decode it into rows (and their
   ``LOAD DATA`` text); undecodable or invalid records go, bytes intact, to the dead-letter
   topic with the error in headers. This runs while the previous batch is being written.
3. Hand the batch to the writer thread, which runs one transaction at a time in hand-over
   order: in ONE database transaction (``Sink.write``) insert the rows (only duplicates of
   ``(server_uuid, ts, id)`` skipped), skip re-sends already archived in a rotated table
   (per-server high-water marks), and store the next offsets by compare-and-set. The offsets it
   expects are those the batches handed over before it store (``Writer.pending_offsets``), else
   those of the last committed transaction; a batch whose predecessor did not commit is not
   started (``Skipped``) and goes back with it, in order.
4. Once that transaction committed, commit the same offsets to Kafka (only so that lag is
   visible to Kafka tools), from the loop's thread.

At most ``Writer.depth`` + 1 batches are in memory (default three: one in its transaction, one
decoded and waiting behind it, and the next one being polled, step 2). A crash anywhere replays
from the offsets of the last committed transaction: no loss, no duplicate. Infrastructure
failures (archive or broker down) are never dead-lettered: a failed batch (and any handed over
behind it) goes back in front of the next one, the loop pauses its partitions, backs off, and
retries them as one batch.

Traps:

- Rebalance callbacks run inside ``consume()``/``poll()`` only, in the loop's thread. They first
  wait for the transaction in flight (its partitions may be the ones going, and the sink has
  one connection). On revocation the next batch is then finished (written) if possible, else
  its revoked partitions' messages are abandoned; a lost partition (session timeout) is
  abandoned at once. Either way the next owner starts from the archive's offsets, and
  compare-and-set keeps a member that lost a partition from overwriting newer offsets.
- With cooperative-sticky assignment, ``on_assign`` receives only the added partitions; the seek
  is done by giving them their offsets in ``incremental_assign``.
- Lag is measured from the archive's committed offsets, not the fetch position: messages that
  are polled or in a transaction are still lag.
- Periodic tasks (rotation) run when no batch is being polled, possibly while one is in its
  transaction: a ``RENAME TABLE`` simply waits for that transaction's commit.
- The cyclic garbage collector: each row allocates a few tracked containers (its ``Item``, row
  tuple, ``Identity``, ...) that live for up to three batches, so with CPython's default
  threshold (700) every row was scanned by a young collection and again by the middle one,
  for nothing: the batches are freed by reference counting. ``ConsumerLoop`` raises the young
  threshold (process-wide) to ``GC_THRESHOLD``; cyclic garbage is still collected, later.
  So nothing on the batch path may form a reference cycle (e.g. a nested function that calls
  itself): a cycle holding a batch's rows kept them until a collection, and with this
  threshold the x1 bench consumer peaked at 716 MB instead of ~210 MB.
"""

from __future__ import annotations

import gc
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
from consumer.sink import Sink, WriteResult
from consumer.topics import TopicWatch
from consumer.writer import Writer
from schemas.codec import Codec

log = logging.getLogger(__name__)

_FIRST_DELAY = 0.2  # first wait before a failed write is retried (s); doubles up to backoff_max

#: Young-generation threshold of the cyclic GC (CPython's default 700): net tracked allocations
#: between collections. Rows die by reference counting long before 100,000 accumulate.
GC_THRESHOLD = 100_000


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
        once: stop, returning 0, when every assigned partition is caught up, but only after a
            completed rebalance gave this member an assignment (possibly empty).
        assignment_timeout: ``once``: seconds to wait for that assignment before failing.
        empty_settle: ``once``: an empty share counts as final only after this many seconds
            without a new assignment or revocation (at least the group's session timeout:
            under cooperative-sticky the first round of a new member is often empty and the
            next one, once a departed member's session ends, hands it partitions).
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
        batch_rows: int = 1000,
        batch_bytes: int = 16 * 1024 * 1024,
        batch_linger_ms: int = 200,
        once: bool = False,
        assignment_timeout: float = 60.0,
        empty_settle: float = 5.0,
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
        self.assignment_timeout = assignment_timeout
        self.empty_settle = empty_settle
        self.tasks = list(tasks)
        self.tick_interval = tick_interval
        self.lag = lag or Lag()
        self.progress = Progress(self.lag)
        self.batch = Batch()  # being polled (the next batch)
        self.writer = Writer(sink, dlq.send)  # the batch in its transaction
        if gc.get_threshold()[0] < GC_THRESHOLD:  # module docstring, "cyclic garbage collector"
            gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])
        self._stop = False
        self._paused = False
        self._retry_at: float | None = None  # a write failed: hand over again at this time
        self._delay = _FIRST_DELAY
        self._joined = False  # the first assignment (possibly empty) arrived
        self._changed_at = 0.0  # when the assignment last changed (assign or revoke)
        self._last_tick: float | None = None
        self.topic_watch = TopicWatch(topics)

    def stop(self) -> None:
        """Ask the loop to finish the current batch and return (signal-safe)."""
        self._stop = True

    def run(self) -> int:
        """Consume until ``stop()`` (or, with ``once``, until caught up); return the exit code."""
        self._subscribe()
        started = time.monotonic()
        try:
            while not self._stop:
                # Step 2: poll until a bound is reached; step 4 for a transaction that ended.
                self._poll(self._poll_timeout())
                while self.writer.done():
                    self._reap()
                if self.batch and self._ready():
                    self._hand_off()
                self._end_idle_backoff()
                self._tick()
                if self.once and not self.batch and not self.writer.busy() and self._done():
                    break
                if self.once and not self._joined:
                    self._check_assignment_wait(started)
            self.flush()
        finally:
            try:
                self.consumer.close()  # revokes: _on_revoke finishes what is left
            finally:
                self.writer.close()
                self.dlq.close()
        return 0

    def _ready(self) -> bool:
        """The polled batch should be handed over now."""
        if self._retry_at is not None and time.monotonic() < self._retry_at and not self._stop:
            return False
        return (
            self.batch.full(self.batch_rows, self.batch_bytes)
            or self.batch.due(self.linger)
            or self._stop
            or (self.once and self.progress.caught_up())
        )

    def _poll_timeout(self) -> float:
        now = time.monotonic()
        timeout = 0.5
        if self.batch.started is not None:
            timeout = self.batch.started + self.linger - now
        if self._retry_at is not None:
            timeout = max(timeout, self._retry_at - now)
        if self.writer.busy():
            timeout = min(timeout, 0.05)  # take the outcome promptly: step 4, lag
        return max(0.0, min(0.5, timeout))

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

    # ---------------------------------------------------------------- steps 2-4

    def _hand_off(self) -> None:
        """Step 2's decoding of the polled batch, then step 3 once the previous one committed."""
        batch, self.batch = self.batch, Batch()
        try:
            # Decoding overlaps the transaction in flight. A registry outage is retried like a
            # database outage.
            prepared = prepare(batch, self.topics[1], self.codec, lines=self.sink.method == "load")
        except AuditStreamError as exc:
            self._requeue(batch)
            self._failed(exc)
            return
        while self.writer.done():  # outcomes already there: step 4 first, failures requeued
            self.batch = batch  # nothing was polled since: back in place while N is reaped
            if not self._reap():  # N failed and went back in front of it: retried together
                return
            self.batch = Batch()
        if self.writer.full():
            self.writer.wait()
            self.batch = batch
            if not self._reap():
                return
            self.batch = Batch()
        # Step 3: expects the offsets stored once the batches handed over before it commit.
        expected = self.progress.expected(prepared.next_offsets)
        pending = self.writer.pending_offsets()
        expected.update({tp: pending[tp] for tp in expected if tp in pending})
        self.writer.submit(batch, prepared, expected)

    def _reap(self) -> bool:
        """Step 4 for the finished transaction (True); on failure its batch goes back (False).

        Raises:
            AuditStreamError: a failure retrying cannot fix (e.g. the archive lacks its tables).
        """
        flight, outcome = self.writer.take()
        if isinstance(outcome, Exception):
            # The batches behind it were not started: all go back, in their order.
            for later in reversed(self.writer.take_rest()):
                self._requeue(later.batch, front=True)
            self._requeue(flight.batch, front=True)
            if isinstance(outcome, Fenced):
                self._fenced(outcome)
                return False
            if isinstance(outcome, AuditStreamError) and outcome.retriable:
                self._failed(outcome)
                return False
            raise outcome
        # Step 4: the database committed; now Kafka's copy, for lag tools only.
        offsets = flight.prepared.next_offsets
        self.progress.archived(offsets, outcome.newest)
        self._commit_kafka(offsets)
        self._count(outcome, flight.seconds)
        self._succeeded()
        self.progress.update_lag(self.consumer)
        return True

    def _requeue(self, batch: Batch, *, front: bool = False) -> None:
        """Put ``batch`` back (before or after what was polled since), partitions still owned."""
        first, second = (batch, self.batch) if front else (self.batch, batch)
        joined = Batch()
        for item in [*first.items, *second.items]:
            if self.progress.owns(item.tp):
                joined.add(item)
        joined.started = min(
            (b.started for b in (first, second) if b.started is not None), default=joined.started
        )
        self.batch = joined

    def _failed(self, exc: AuditStreamError) -> None:
        """A retriable failure: pause, and hand the batch over again after a backoff."""
        if self._stop:
            log.warning("stopping: batch abandoned, offsets kept: %s", exc)
            self.batch = Batch()
            return
        log.warning("write failed, retrying in %.1fs: %s", self._delay, exc)
        if not self._paused:
            self._pause(True)
        self._retry_at = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, self.backoff_max)

    def _end_idle_backoff(self) -> None:
        """End a backoff that has nothing left to retry once its time is up.

        Trap: only a write resumes the partitions a failure paused (``_succeeded``). When a
        rebalance revoked or lost every partition of the failed batch during the backoff, the
        batch is empty and no write comes, so the partitions kept or assigned since stayed
        paused for ever (seen in the three-member kill -9 test: a member alive, idle, its
        partitions never read again). Like ``_fenced``, resume here.
        """
        if (
            self._retry_at is not None
            and not self.batch
            and not self.writer.busy()
            and time.monotonic() >= self._retry_at
        ):
            self._succeeded()

    def _succeeded(self) -> None:
        self._retry_at = None
        self._delay = _FIRST_DELAY
        if self._paused:
            self._pause(False)

    def _settle(self) -> None:
        """Wait for every batch handed over and take its outcome (step 4 or requeue)."""
        while self.writer.busy():
            self.writer.wait()
            self._reap()

    def flush(self) -> None:
        """Write everything polled, retrying infrastructure failures with backoff.

        Once stopping, a batch that fails is abandoned instead (its offsets are kept).
        """
        while self.batch or self.writer.busy():
            if self.writer.busy():
                self._settle()
                continue
            while self._retry_at is not None and not self._ready():
                # Paused partitions deliver nothing new; anything already fetched joins.
                self._poll(min(0.2, max(0.0, self._retry_at - time.monotonic())))
            self._hand_off()

    def flush_once(self) -> None:
        """One write attempt of the polled batch, no retries (used while partitions go)."""
        self._settle()
        if self.batch:
            self._hand_off()
            self._settle()

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
        # The archive answered, so a backoff for an earlier failure is over. Resume here: the
        # fence may have emptied the batch, and then no write would ever resume the partitions.
        self._succeeded()

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

    def _count(self, result: WriteResult, seconds: float) -> None:
        topic = self.topics[0]
        metrics.ROWS_INSERTED.labels(topic).inc(result.inserted)
        metrics.DUPLICATES_SKIPPED.labels(topic).inc(result.duplicates)
        metrics.BATCH_SECONDS.observe(seconds)
        for letter in result.dead:
            metrics.DEAD_LETTERS.labels(letter.item.topic, letter.error_class).inc()

    # ---------------------------------------------------------------- rebalance callbacks

    def _on_assign(self, consumer: Consumer, partitions: list[KafkaTP]) -> None:
        # Step 1: seek to the offsets stored in the archive (retry until it answers).
        self._settle()  # the sink's one connection may be in a transaction
        tps = [(p.topic, p.partition) for p in partitions]
        self._joined = True
        self._changed_at = time.monotonic()
        if not partitions and not self.progress.stored:
            log.info("assigned no partitions (the group has more members than partitions)")
        delay = _FIRST_DELAY
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
        try:
            self._settle()  # the transaction in flight may hold these partitions: let it end
            if self.batch and self._retry_at is None:
                self.flush_once()
        except AuditStreamError as exc:
            log.warning("abandoning the in-flight batch of revoked partitions: %s", exc)
        self._forget(tps)  # whatever could not be written is the next owner's
        self._changed_at = time.monotonic()
        log.info("revoked %s", tps)

    def _on_lost(self, consumer: Consumer, partitions: list[KafkaTP]) -> None:
        tps = [(p.topic, p.partition) for p in partitions]
        self._forget(tps)
        log.warning("lost %s (abandoned, not written)", tps)

    def _forget(self, tps: list[TopicPartition]) -> None:
        self.batch.drop(tps)
        self.progress.forget(tps)

    # ---------------------------------------------------------------- --once, tasks

    def _done(self) -> bool:
        """``--once``: the group gave this member its share (perhaps none) and it is caught up.

        Trap: an empty share is final only once the group has been quiet for ``empty_settle``
        seconds; a member that stopped at its first, empty, cooperative round left behind the
        partitions a later round would have given it (events that no ``--once`` run archived).
        """
        if not self._joined:
            return False
        if not self.progress.stored:
            return time.monotonic() - self._changed_at >= self.empty_settle
        return self.progress.caught_up()

    def _check_assignment_wait(self, started: float) -> None:
        """``--once``: a member the group never answers must not report a drained backlog.

        Raises:
            BrokerError: no assignment (not even an empty one) within ``assignment_timeout``.
        """
        waited = time.monotonic() - started
        if waited > self.assignment_timeout:
            raise BrokerError(
                f"--once: no partition assignment from the group within {waited:.0f} s "
                "(is the broker reachable and do the topics exist?); nothing was read",
                topic=self.topics[0],
            )

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
