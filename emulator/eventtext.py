"""Events as text: the plugin's spacing, the bookmark of a raw event, rotated file names."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson

HEAD = re.compile(rb'\{\s*"timestamp"\s*:\s*"([^"]*)"\s*,\s*"id"\s*:\s*(\d+)')
TS_FORMAT = "%Y-%m-%d %H:%M:%S"
_FIRST_KEYS = ("timestamp", "id", "class", "event")


def utc_now_text() -> str:
    """The current UTC time in the audit log's ``timestamp`` format (1 s resolution)."""
    return datetime.now(UTC).strftime(TS_FORMAT)


def event_key(raw: bytes) -> tuple[str, int]:
    """``(timestamp, id)`` of one raw event (fast path for the usual key order).

    Raises:
        ValueError: the text is not a JSON object with a string ``timestamp`` and integer ``id``.
    """
    match = HEAD.match(raw)
    if match:
        return match.group(1).decode(), int(match.group(2))
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not a JSON event: {exc}") from exc
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")  # noqa: TRY004 - bad content, not a bad argument
    ts, ident = obj.get("timestamp"), obj.get("id")
    if not isinstance(ts, str) or not isinstance(ident, int) or isinstance(ident, bool):
        raise ValueError("event without a string timestamp and an integer id")  # noqa: TRY004
    return ts, ident


def ordered(event: dict[str, Any]) -> dict[str, Any]:
    """The event with ``timestamp``, ``id``, ``class``, ``event`` first, as the servers write."""
    out = {k: event[k] for k in _FIRST_KEYS if k in event}
    out.update((k, v) for k, v in event.items() if k not in out)
    return out


def format_event(event: dict[str, Any]) -> bytes:
    """Serialise a dict the way the plugin does: ``{ "timestamp": "...", "id": 0, ... }``."""
    return _value(ordered(event)).encode("utf-8")


def format_pretty(event: dict[str, Any]) -> bytes:
    r"""Serialise a dict like Percona's JSON format (``log_record_formatter/json.cc``).

    ``  {`` on its own line, one member per line indented by 4, nested objects over lines
    indented by 6 with ``}`` after their last member, arrays on one line, ``/`` escaped as
    ``\/``, and ``  }`` closing the event: the layout ``emulator.logindex`` reads back.
    """
    members = ",\n".join(
        f"    {_pretty_scalar(k)}: {_pretty(v)}" for k, v in ordered(event).items()
    )
    return ("  {\n" + members + "\n  }").encode("utf-8")


def _pretty(value: Any) -> str:
    if isinstance(value, dict):
        if not value:
            return "{}"
        inner = ",\n".join(f"      {_pretty_scalar(k)}: {_flat(v)}" for k, v in value.items())
        return "{\n" + inner + "}"
    return _flat(value)


def _flat(value: Any) -> str:
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_pretty_scalar(k)}: {_flat(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flat(v) for v in value) + "]"
    return _pretty_scalar(value)


def _pretty_scalar(value: Any) -> str:
    return _scalar(value).replace("/", "\\/")


def _value(value: Any) -> str:
    if isinstance(value, dict):
        if not value:
            return "{ }"
        inner = ", ".join(f"{_scalar(str(k))}: {_value(v)}" for k, v in value.items())
        return "{ " + inner + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + " ]"
    return _scalar(value)


def _scalar(value: Any) -> str:
    return orjson.dumps(value).decode("utf-8")


def rotated_name(basename: str, suffix: str, last_ts: str) -> str:
    """``audit.20210115T140633.json`` for a file whose last event has ``last_ts`` (UTC)."""
    stamp = last_ts.replace("-", "").replace(":", "").replace(" ", "T")
    return f"{basename}.{stamp}.{suffix}"
