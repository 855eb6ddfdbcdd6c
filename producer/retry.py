"""Capped exponential backoff with jitter, interruptible by a stop request.

Trap: the wait uses ``threading.Event.wait`` so SIGTERM during a long backoff stops at once.
"""

from __future__ import annotations

import random
import threading


class Backoff:
    """Delays of ``base * 2**failures`` seconds, capped, half fixed and half random.

    Args:
        cap: the longest delay in seconds.
        stopping: set when the process should stop; ``wait`` returns early then.
        base: the first delay's cap in seconds.
    """

    def __init__(self, cap: float, stopping: threading.Event, base: float = 0.25) -> None:
        self._cap = cap
        self._stopping = stopping
        self._base = base
        self.failures = 0

    def delay(self) -> float:
        """The next delay (does not count a failure)."""
        cap = min(self._cap, self._base * 2 ** min(self.failures, 16))
        return float(cap / 2 + random.uniform(0, cap / 2))  # noqa: S311 - jitter, not crypto

    def failed(self) -> float:
        """Count a failure; return the delay to wait before the next attempt."""
        self.failures += 1
        return self.delay()

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds`` unless a stop is requested first."""
        self._stopping.wait(seconds)

    def reset(self) -> None:
        """An attempt succeeded."""
        self.failures = 0
