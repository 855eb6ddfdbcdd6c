"""Hypothesis strategies: audit events as a server (or a broken one) might write them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from schemas.fused import OBJECTS, SOURCES

#: Any text, with lone surrogates (the stdlib JSON path lets ``"\ud800"`` through) sometimes.
texts = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(exclude_categories=()), max_size=10),
    st.sampled_from(["", "root", "localhost", "Query", "<secret>", "“typographic”", "é\x00\n"]),
)
ints = st.one_of(
    st.integers(-3, 20000),
    st.integers(),
    st.sampled_from([2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64 - 1, 2**64, 16383, 16384]),
)
floats = st.floats(allow_nan=True, allow_infinity=True)
scalars = st.one_of(st.none(), st.booleans(), ints, floats, texts)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=8,
)

_KEYS: dict[str, list[str]] = {}
for _field, _source in SOURCES.items():
    if isinstance(_source, tuple) and _source[0] != "event":
        _KEYS.setdefault(_source[0], []).append(_source[1])
_KEYS["startup"].append("server_id")
_KEYS["shutdown"] = ["server_id"]
_KEYS["general"] += ["sql_command", "query"]
_KEYS["table"] += ["sql_command", "query"]


@st.composite
def _sub_object(draw: st.DrawFn, local: str) -> Any:
    """A sub-object: mostly a dict of its known keys (each present or not; a value of the
    expected type, another type, or null) and unknown keys; else empty, null or not an object."""
    shape = draw(st.integers(0, 9))
    if shape == 0:
        return draw(st.one_of(st.none(), json_values))
    if shape == 1:
        return {}
    obj: dict[str, Any] = draw(st.dictionaries(texts, json_values, max_size=2))
    for key in sorted(set(_KEYS.get(local, []))):
        if draw(st.integers(0, 3)) > 0:
            obj[key] = draw(st.one_of(texts, ints, floats, json_values, st.none()))
    return obj


# hypothesis takes naive bounds; the text has no zone
_FIRST, _LAST = datetime(1, 1, 1), datetime(9999, 12, 31)  # noqa: DTZ001
valid_timestamps = st.datetimes(min_value=_FIRST, max_value=_LAST).map(
    lambda d: f"{d.year:04d}-{d.month:02d}-{d.day:02d} {d.hour:02d}:{d.minute:02d}:{d.second:02d}"
)
_IDENTITY: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    # key: (valid, broken)
    "timestamp": (valid_timestamps, st.one_of(scalars, st.just("2024-01-01T00:00:00"))),
    "id": (st.integers(0, 2**64 - 1) | st.integers(0, 100), scalars),
    "class": (
        st.sampled_from(["general", "connection", "table_access", "audit", "x"]) | texts,
        st.one_of(st.none(), ints, json_values),
    ),
    "event": (
        st.sampled_from(["status", "connect", "read", "startup"]) | texts,
        st.one_of(st.none(), ints, json_values),
    ),
}


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """An event: identity mostly valid (1 in 20 broken or missing), the rest anything."""
    event: dict[str, Any] = {}
    for key, (valid, broken) in _IDENTITY.items():
        fate = draw(st.integers(0, 39))
        if fate > 1:
            event[key] = draw(valid)
        elif fate == 1:
            event[key] = draw(broken)
    for key in ("connection_id", "time"):
        if draw(st.booleans()):
            event[key] = draw(st.one_of(ints, scalars))
    for local, key in OBJECTS.items():
        if draw(st.booleans()):
            event[key] = draw(_sub_object(local))
    event.update(draw(st.dictionaries(texts, json_values, max_size=3)))
    return event


def raw_text(event: dict[str, Any], ascii_only: bool) -> str:
    """Some JSON text of ``event`` (the fused path takes ``raw`` as given)."""
    return json.dumps(event, ensure_ascii=ascii_only)


def zones() -> st.SearchStrategy[timezone]:
    """Fixed-offset time zones, UTC among them."""
    return st.one_of(
        st.just(UTC), st.integers(-23 * 60, 23 * 60).map(lambda m: timezone(timedelta(minutes=m)))
    )
