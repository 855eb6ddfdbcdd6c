"""``audit_log_read`` arguments, validated the way the server does.

Forms: none (continue), ``null`` (close), or a JSON object with a bookmark (``timestamp`` and
``id``, both or neither), ``start`` (``{"timestamp": T}``, a date alone = 00:00:00) and/or
``max_array_length`` (a positive integer). Other keys are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from emulator.errors import UdfError, udf_failed

ER_INVALID_MAX_ARRAY_LENGTH = 3218
_TS = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass
class Arguments:
    """A validated argument: close, a position (bookmark or start) and a count limit."""

    close: bool = False
    bookmark: tuple[str, int] | None = None
    start: str | None = None
    limit: int | None = None


def parse_argument(text: str | None) -> Arguments:
    """Validate an ``audit_log_read`` argument the way the server does.

    Raises:
        UdfError: malformed JSON, half a bookmark, ``start`` with a bookmark, a bad
            ``max_array_length`` (3218).
    """
    if text is None:
        return Arguments()
    try:
        value: Any = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise udf_failed("Invalid JSON argument.") from exc
    if value is None:
        return Arguments(close=True)
    if not isinstance(value, dict):
        raise udf_failed("Invalid JSON argument.")
    args = Arguments()
    if "max_array_length" in value:
        limit = value["max_array_length"]
        if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
            raise UdfError(
                ER_INVALID_MAX_ARRAY_LENGTH, 'Invalid "max_array_length" argument value.'
            )
        args.limit = limit
    has_ts, has_id = "timestamp" in value, "id" in value
    if has_ts != has_id:
        raise udf_failed("Both 'timestamp' and 'id' are required in a bookmark.")
    if has_ts:
        ts, ident = value["timestamp"], value["id"]
        if not isinstance(ts, str) or not _TS.match(ts):
            raise udf_failed("Invalid 'timestamp' in bookmark.")
        if not isinstance(ident, int) or isinstance(ident, bool) or ident < 0:
            raise udf_failed("Invalid 'id' in bookmark.")
        args.bookmark = (ts, ident)
    if "start" in value:
        if args.bookmark is not None:
            raise udf_failed("'start' cannot be used together with a bookmark.")
        start = value["start"]
        ts = start.get("timestamp") if isinstance(start, dict) else None
        if not isinstance(ts, str) or not (_TS.match(ts) or _DATE.match(ts)):
            raise udf_failed("Invalid 'start' argument.")
        args.start = ts if _TS.match(ts) else ts + " 00:00:00"
    return args
