"""Interpreter settings for the producer's hot path: the cyclic garbage collector.

A 4 MB page parses into some 70,000 dicts and lists (one event is a dozen nested objects), and
they all live until their events are encoded. With CPython's default thresholds (a young
collection every 700 new containers) the collector walks every one of them several times on
its way to the old generation, and each full collection walks the imported modules too:
measured here, that was about 40 % of the page split's time (py-spy, BENCHMARKS.md "Issue 14,
producer parse (session 3)").

The hot path makes no reference cycles (pages, events and parsed objects are trees, freed by
reference counting), so collecting less often frees the same memory. Traps:

- ``freeze()`` after start-up moves the imported modules into the permanent generation: a
  full collection no longer walks them, and they are never freed anyway.
- Cycles still happen off the hot path (an exception and its traceback after a retry); they
  are collected, only later: the thresholds delay collections, they never disable them.
"""

from __future__ import annotations

import gc

#: New containers between young collections (CPython's default: 700), and the two older
#: generations' counts (defaults kept).
YOUNG_THRESHOLD = 100_000


def tune_gc() -> None:
    """Collect once, freeze what start-up allocated, and collect young objects less often."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
