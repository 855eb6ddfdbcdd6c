"""The writer thread: batch N's transaction runs while the loop polls and decodes batch N+1.

Transactions run one at a time, in hand-over order, on the sink's one connection. Up to
``depth`` batches may be handed over (default 2: one in its transaction, the next one decoded
and waiting), so that the thread starts N+1 the moment N commits instead of idling until the
loop comes back from polling and decoding N+2 (the connector releases the GIL while the server
works, so the loop's decoding overlaps the transaction).

The compare-and-set of N+1 expects the offsets N stores (``pending_offsets``): right only if
N commits. So N+1 runs only after N committed; if N failed (rolled back, fenced, connection
lost), N+1 is not started and its outcome is ``Skipped``: the loop puts both back, in order,
and hands them over again. Each batch is still exactly one transaction with its rows, offsets
and high-water marks.

Traps:

- Only the loop's thread calls these methods; the writer thread only runs ``Sink.write``.
- ``wait`` is the single place where the loop blocks on the database: rebalance callbacks and
  the loop itself call it before touching the sink, and ``_settle`` drains every batch handed
  over, not only the first.
- Outcomes are taken in hand-over order (``take`` gives the oldest).
- The GIL: the loop's thread decodes in pure Python while this thread waits on the server.
  After each statement this thread needs the GIL back, and CPython takes it from a busy thread
  only every switch interval (5 ms by default); a transaction has about eight statements, so
  the batch could wait tens of ms for nothing, and the server idles meanwhile. ``Writer``
  lowers the interval (process-wide) to ``SWITCH_INTERVAL``: at 0.5 ms the writer still spent
  18 % of its time waiting for the GIL (py-spy --native, session 6); 0.1 ms measured better in
  paired runs (BENCHMARKS.md, "consumer: compiled reader").
"""

from __future__ import annotations

import concurrent.futures
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from auditstream.errors import ArchiveError
from consumer.batch import Batch, DeadLetter, TopicPartition
from consumer.sink import Prepared, Sink, WriteResult

#: Seconds a thread runs before the GIL is offered to a waiting one (CPython's default: 0.005).
SWITCH_INTERVAL = 0.0001

#: Batches handed over at once: one in its transaction, one decoded and waiting behind it.
DEPTH = 2


class Skipped(ArchiveError):
    """The batch was not started: the one handed over before it did not commit (retriable)."""

    retriable = True


@dataclass
class InFlight:
    """A batch handed to the writer thread and what its transaction will do or did."""

    batch: Batch
    prepared: Prepared
    started: float
    future: concurrent.futures.Future[WriteResult]

    @property
    def seconds(self) -> float:
        """Time since the batch was handed over."""
        return time.monotonic() - self.started


class Writer:
    """One thread that runs ``Sink.write`` for the batches handed over, one at a time, in order."""

    def __init__(
        self,
        sink: Sink,
        dead_letter: Callable[[list[DeadLetter]], None],
        depth: int = DEPTH,
    ) -> None:
        self._sink = sink
        self._dead_letter = dead_letter
        self.depth = max(1, depth)
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="archive-writer")
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
        self.inflight: deque[InFlight] = deque()

    def busy(self) -> bool:
        """True while a batch is handed over and its outcome not yet taken."""
        return bool(self.inflight)

    def full(self) -> bool:
        """True when ``depth`` batches are handed over: take the oldest's outcome first."""
        return len(self.inflight) >= self.depth

    def done(self) -> bool:
        """True when the oldest batch handed over has an outcome to take."""
        return bool(self.inflight) and self.inflight[0].future.done()

    def pending_offsets(self) -> dict[TopicPartition, int]:
        """The offsets the batches handed over will have stored once they all commit."""
        out: dict[TopicPartition, int] = {}
        for flight in self.inflight:
            out.update(flight.prepared.next_offsets)
        return out

    def submit(
        self, batch: Batch, prepared: Prepared, expected: dict[TopicPartition, int | None]
    ) -> None:
        """Queue the transaction of ``prepared`` (step 3) behind those handed over.

        ``expected``: the offsets stored once every batch handed over before it committed.
        """
        if self.full():
            raise RuntimeError("the writer is full")
        before = self.inflight[-1].future if self.inflight else None
        future = self._pool.submit(self._write, before, prepared, expected)
        self.inflight.append(InFlight(batch, prepared, time.monotonic(), future))

    def _write(
        self,
        before: concurrent.futures.Future[WriteResult] | None,
        prepared: Prepared,
        expected: dict[TopicPartition, int | None],
    ) -> WriteResult:
        # One thread, first in first out: ``before`` has its outcome when this starts.
        if before is not None and (not before.done() or before.exception() is not None):
            raise Skipped("the batch handed over before this one did not commit")
        return self._sink.write(prepared, expected, self._dead_letter)

    def wait(self) -> None:
        """Block until the oldest batch has an outcome (committed, or failed and rolled back)."""
        if self.inflight:
            concurrent.futures.wait([self.inflight[0].future])

    def take(self) -> tuple[InFlight, WriteResult | Exception]:
        """The oldest batch, finished, and its result or error."""
        if not self.done():
            raise RuntimeError("no finished batch to take")
        flight = self.inflight.popleft()
        error = flight.future.exception()
        if error is not None:
            if not isinstance(error, Exception):
                raise error
            return flight, error
        return flight, flight.future.result()

    def take_rest(self) -> list[InFlight]:
        """After a failure: wait for the batches behind it (all ``Skipped``) and take them."""
        rest: list[InFlight] = []
        while self.inflight:
            self.wait()
            flight, outcome = self.take()
            if not isinstance(outcome, Skipped):  # cannot happen: FIFO on one thread
                raise TypeError(f"a batch behind a failed one ran: {outcome!r}")
            rest.append(flight)
        return rest

    def close(self) -> None:
        """Wait for the batches handed over (their outcomes are dropped) and stop the thread."""
        self._pool.shutdown(wait=True)
        self.inflight.clear()
