"""librdkafka's log lines through Python logging, rate-limited.

Without a ``logger`` in their configuration, confluent-kafka clients print librdkafka's lines
raw on stderr (``%3|1700000000.123|FAIL|rdkafka#producer-1| ...``), once per retry: an
unreachable broker floods the terminal and bypasses ``--log-json``. :func:`with_logger` gives a
client configuration the ``librdkafka`` logger, whose filter lets one line of each shape
through per ``INTERVAL`` seconds and says how many like it it held back.

Traps:
- The lines reach the logger only while the client is polled (``poll``, ``consume``,
  ``flush``): a client that is never polled logs nothing.
- confluent-kafka logs ``"%s [%s] %s"`` with ``(facility, client name, message)`` as arguments;
  the filter reads them from ``record.args``. The message never contains the SASL password.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

#: The logger every client gets; its records are named ``librdkafka``.
LOGGER = logging.getLogger("librdkafka")

#: Seconds during which repeats of one line shape are counted instead of logged.
INTERVAL = 30.0

_NUMBERS = re.compile(r"\d+")


class RateLimit(logging.Filter):
    """Lets one record per (level, facility, message shape) through every ``interval`` s."""

    def __init__(self, interval: float = INTERVAL) -> None:
        super().__init__()
        self.interval = interval
        self._seen: dict[tuple[int, str], tuple[float, int]] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        """Drop repeats; add context (facility, client) and the count of held-back repeats."""
        args = record.args if isinstance(record.args, tuple) else ()
        facility, client, text = (str(a) for a in args) if len(args) == 3 else ("", "", "")
        if not text:
            text = record.getMessage()
        key = (record.levelno, facility + " " + _NUMBERS.sub("#", text))
        now = time.monotonic()
        with self._lock:
            last, held = self._seen.get(key, (None, 0))
            if last is not None and now - last < self.interval:
                self._seen[key] = (last, held + 1)
                return False
            self._seen[key] = (now, 0)
        record.msg = text + (f" ({held} more like it in {self.interval:g} s)" if held else "")
        record.args = ()
        ctx = dict(getattr(record, "ctx", None) or {})
        ctx.update({k: v for k, v in (("facility", facility), ("client", client)) if v})
        record.ctx = ctx
        return True


LOGGER.addFilter(RateLimit())


def with_logger(conf: Mapping[str, Any]) -> dict[str, Any]:
    """``conf`` plus the ``librdkafka`` logger (a ``logger`` already there is kept)."""
    return {"logger": LOGGER, **conf}
