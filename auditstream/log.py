"""Logging: human-readable by default, one JSON object per line with ``--log-json``.

Pass context through ``extra={"ctx": {...}}``; it is appended to the line (or merged into the
JSON object). Never log a secret: DSNs are logged through ``MySQLDsn.url()``, which masks.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

import orjson


class _HumanFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ctx: dict[str, Any] | None = getattr(record, "ctx", None)
        if ctx:
            line += " " + " ".join(f"{k}={v}" for k, v in ctx.items())
        return line


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        ctx = getattr(record, "ctx", None)
        if ctx:
            obj.update(ctx)
        if record.exc_info:
            obj["error"] = self.formatException(record.exc_info)
        return orjson.dumps(obj, default=str).decode()


def setup(*, json: bool = False, level: str = "INFO") -> None:
    """Configure the root logger once, in an entry point."""
    handler = logging.StreamHandler(sys.stderr)
    if json:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(_HumanFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
