"""The writer thread: batch N's transaction runs while the loop polls and decodes batch N+1.

Exactly one batch is in flight at a time, for two reasons: the sink has one connection, and the
compare-and-set of batch N+1 expects the offsets batch N stored, which are known only once N's
transaction has committed. So the loop hands over N+1 only after it has seen N's outcome
(``wait`` then ``take``); what overlaps is N's transaction with N+1's fetching and decoding
(the connector releases the GIL while the server works).

Traps:

- Only the loop's thread calls these methods; the writer thread only runs ``Sink.write``.
- ``wait`` is the single place where the loop blocks on the database: rebalance callbacks and
  the loop itself call it before touching the sink or handing over the next batch.
- The GIL: the loop's thread decodes in pure Python while this thread waits on the server.
  After each statement this thread needs the GIL back, and CPython takes it from a busy thread
  only every switch interval (5 ms by default); a transaction has about eight statements, so
  the batch could wait tens of ms for nothing. ``Writer`` lowers the interval (process-wide)
  to ``SWITCH_INTERVAL``.
"""

from __future__ import annotations

import concurrent.futures
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from consumer.batch import Batch, DeadLetter, TopicPartition
from consumer.sink import Prepared, Sink, WriteResult

#: Seconds a thread runs before the GIL is offered to a waiting one (CPython's default: 0.005).
SWITCH_INTERVAL = 0.0005


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
    """One thread that runs ``Sink.write`` for one batch at a time."""

    def __init__(self, sink: Sink, dead_letter: Callable[[list[DeadLetter]], None]) -> None:
        self._sink = sink
        self._dead_letter = dead_letter
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="archive-writer")
        sys.setswitchinterval(min(sys.getswitchinterval(), SWITCH_INTERVAL))
        self.inflight: InFlight | None = None

    def busy(self) -> bool:
        """True while a batch is handed over and its outcome not yet taken."""
        return self.inflight is not None

    def done(self) -> bool:
        """True when the batch in flight has an outcome to take."""
        return self.inflight is not None and self.inflight.future.done()

    def submit(
        self, batch: Batch, prepared: Prepared, expected: dict[TopicPartition, int | None]
    ) -> None:
        """Start the transaction of ``prepared`` (step 3); nothing may be in flight."""
        if self.inflight is not None:
            raise RuntimeError("a batch is already in flight")
        future = self._pool.submit(self._sink.write, prepared, expected, self._dead_letter)
        self.inflight = InFlight(batch, prepared, time.monotonic(), future)

    def wait(self) -> None:
        """Block until the batch in flight has an outcome (committed, or failed and rolled back)."""
        if self.inflight is not None:
            concurrent.futures.wait([self.inflight.future])

    def take(self) -> tuple[InFlight, WriteResult | Exception]:
        """The finished batch and its result or error; the writer is free again."""
        flight = self.inflight
        if flight is None or not flight.future.done():
            raise RuntimeError("no finished batch to take")
        self.inflight = None
        error = flight.future.exception()
        if error is not None:
            if not isinstance(error, Exception):
                raise error
            return flight, error
        return flight, flight.future.result()

    def close(self) -> None:
        """Wait for the batch in flight (its outcome is dropped) and stop the thread."""
        self.wait()
        self._pool.shutdown(wait=True)
