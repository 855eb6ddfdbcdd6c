"""The page split on bytes (the source's path) is the reference split of the decoded text.

``split(bytes)`` takes ``_split_bytes`` (no page decode, ``raw`` kept as the page's bytes) and
falls back to the reference whenever it declines; ``split(text)`` is the reference alone. For
any page (well-formed or not) both must give the same events (raw bytes, objects, positions,
errors), the same end-of-sequence flag, or the same ``PageError``; and the events' Avro values
and chain hashes must be those of the reference's text.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditstream.chain import ChainState, Link
from auditstream.errors import PageError
from producer import page as pages
from producer.linker import Linker
from producer.page import Event, Page, split
from schemas.codec import SingleObjectCodec
from schemas.mapping import to_record
from schemas.registry import AUDIT_EVENT
from tests.producer.conftest import UUID, make_events, sample_events
from tests.schemas import strategies

CODEC = SingleObjectCodec()


def outcome(data: bytes | str) -> Any:
    """What a split gives, comparable across paths: events as plain tuples, or the error."""
    try:
        page = split(data, server_uuid="u")
    except PageError as exc:
        return ("PageError", exc.message, exc.context)
    return (
        [(e.data, e.raw, e.obj, e.pos, e.error) for e in page.events],
        page.exhausted,
    )


def reference(data: bytes) -> Any:
    """The reference: decode the whole page, then split its text."""
    try:
        text = pages.decode_text(data, server_uuid="u")
    except PageError as exc:
        return ("PageError", exc.message, exc.context)
    return outcome(text)


def assert_same_as_reference(data: bytes) -> Page | None:
    got, expected = outcome(data), reference(data)
    assert got == expected
    return None if got[0] == "PageError" else split(data)


def server_layout(raws: list[bytes], null: bool) -> bytes:
    return b"[\n" + b",\n".join([*raws, b"null"] if null else raws) + b"\n]"


def percona_layout(raws: list[bytes], null: bool) -> bytes:
    if null:
        return b"[\n" + b"".join(r + b",\n" for r in raws) + b"null\n]\n"
    return b"[\n" + b",\n".join(raws) + b"\n]\n"


def other_layout(raws: list[bytes], null: bool) -> bytes:
    return b" [ " + b" ,\t".join([*raws, b"null"] if null else raws) + b" ]"


LAYOUTS = [server_layout, percona_layout, other_layout]

#: Text that looks like the page's own structure, inside strings.
TRAPS = [
    "},\n{",
    '"},\n{"',
    "\\",
    '"',
    "{[",
    "]}",
    ",\n",
    "null",
    "\u2028\u2029",
    "é€😀",
    "\x00\x1f",
    "\ud800",  # a lone surrogate: JSON text can escape it; orjson refuses it, json reads it
]
trap_text = st.one_of(st.sampled_from(TRAPS), st.text(max_size=30))


@st.composite
def event_text(draw: st.DrawFn, index: int) -> bytes:
    """One element's text as a server (or a broken one) might write it."""
    kind = draw(st.integers(0, 19))
    if kind == 0:  # not an object, or a broken identity
        return draw(st.sampled_from([b"[1, 2]", b'"text"', b"1", b"{}", b'{"id": 1}']))
    event: dict[str, Any] = {
        "timestamp": f"2024-01-01 00:{index // 60:02d}:{index % 60:02d}",
        "id": draw(st.sampled_from([index % 3, index, 2**64 - 1 - 100 + index])),
        "class": "general",
        "general_data": {"query": draw(trap_text), "status": draw(st.integers(-5, 2**40))},
    }
    if kind == 1:
        event = draw(strategies.events())  # anything, identity mostly valid
    if kind == 2:
        event["nested"] = {"a": [{"b": draw(trap_text)}, [], {}], "n": None, "t": True}
    style = draw(st.integers(0, 4))
    ascii_only = draw(st.booleans())
    if style == 0:  # the plugin's spacing
        text = (
            "{ "
            + ", ".join(
                f"{json.dumps(k, ensure_ascii=ascii_only)}: {json.dumps(v, ensure_ascii=ascii_only)}"
                for k, v in event.items()
            )
            + " }"
        )
    elif style == 1:  # compact
        text = json.dumps(event, ensure_ascii=ascii_only, separators=(",", ":"))
    elif style == 2:  # pretty-printed over several lines
        text = json.dumps(event, ensure_ascii=ascii_only, indent=2)
    elif style == 3:  # whitespace around the element
        text = " " + json.dumps(event, ensure_ascii=ascii_only) + "\t"
    else:
        text = json.dumps(event, ensure_ascii=ascii_only)
    return text.encode("utf-8", "surrogatepass")  # a raw surrogate: invalid UTF-8, on purpose


@st.composite
def page_bytes(draw: st.DrawFn) -> bytes:
    count = draw(st.integers(0, 8))
    raws = [draw(event_text(i)) for i in range(count)]
    if count > 1 and draw(st.integers(0, 9)) == 0:  # a repeated position
        raws.append(raws[-1])
    data = draw(st.sampled_from(LAYOUTS))(raws, draw(st.booleans()))
    damage = draw(st.integers(0, 9))
    if damage == 0 and data:  # truncated
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif damage == 1 and data:  # one byte replaced by an invalid or structural one
        at = draw(st.integers(0, len(data) - 1))
        byte = draw(st.sampled_from([b"\xff", b"\xc3", b"\n", b",", b"}", b"]"]))
        data = data[:at] + byte + data[at + 1 :]
    return data


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(page_bytes())
def test_any_page_splits_like_the_reference(data: bytes) -> None:
    assert_same_as_reference(data)


@given(st.lists(trap_text, min_size=1, max_size=10), st.sampled_from(LAYOUTS), st.booleans())
def test_string_content_never_moves_a_boundary(queries: list[str], layout: Any, null: bool) -> None:
    raws = [
        orjson.dumps({"timestamp": "2024-01-01 00:00:00", "id": i, "q": q})
        if "\ud800" not in q
        else json.dumps({"timestamp": "2024-01-01 00:00:00", "id": i, "q": q}).encode()
        for i, q in enumerate(queries)
    ]
    page = assert_same_as_reference(layout(raws, null))
    assert page is not None
    assert [e.data for e in page.events] == raws


def test_every_sample_in_every_layout_is_byte_for_byte_and_fast() -> None:
    raws = [e.encode() for e in sample_events()]
    for layout in LAYOUTS:
        for null in (True, False):
            page = assert_same_as_reference(layout(raws, null))
            assert page is not None and [e.data for e in page.events] == raws
    page = split(server_layout(raws, True))
    assert all(e._data is not None and e._raw is None for e in page.events)  # never decoded


def test_a_megabyte_query_and_the_server_ids() -> None:
    huge = "SELECT '" + 'é€😀\\"},\\n{x' * 60_000 + "'"
    raws = [e.encode() for e in make_events(4)]
    raws.insert(2, orjson.dumps({"timestamp": "2024-01-01 00:00:00", "id": 1, "q": huge}))
    del raws[1]
    for layout in LAYOUTS:
        page = assert_same_as_reference(layout(raws, True))
        assert page is not None and [e.data for e in page.events] == raws


def test_percona_jsonl_pages_with_global_ids() -> None:
    raws = [e.encode() for e in make_events(30, percona=True)]
    page = assert_same_as_reference(percona_layout(raws, True))
    assert page is not None
    assert [e.pos.id for e in page.events if e.pos] == list(range(30))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_step_back_after_an_unparseable_piece_gives_the_references_error(layout: Any) -> None:
    """The reference reports the broken piece, not the earlier step back."""
    a, b = (e.encode() for e in make_events(2))
    assert outcome(layout([b, a], True))[0] == "PageError"
    assert_same_as_reference(layout([b, a, b"{broken"], True))
    assert_same_as_reference(layout([b, a], True))


@pytest.mark.parametrize("source", ["traffic", "samples"])
def test_events_give_the_references_avro_bytes_and_chain(source: str, tmp_path: Path) -> None:
    """Held-out traffic (the emulator's generator) and the real sample, through the hot path:
    the page's bytes to chain and encoder, against the reference's text to fastavro."""
    from tests.schemas.reference import traffic_events

    texts = traffic_events(tmp_path, 2000, seed=20261207) if source == "traffic" else None
    raws = [t.encode() for t in (texts or sample_events())]
    data = server_layout(raws, True)
    fast = split(data).events
    slow = split(data.decode()).events
    assert len(fast) == len(raws)
    chain_fast = chain_slow = ChainState.start(UUID)
    linker = Linker(chain_fast)  # the producer's hot path: no state object per event
    for got, want in zip(fast, slow, strict=True):
        assert got.data == want.raw.encode() and got.pos == want.pos and got.pos is not None
        link = linker.propose(got.pos.ts, got.pos.id, got.data)
        linker.commit()
        chain_fast = chain_fast.advance_event(got.pos.ts, got.pos.id, got.data)
        chain_slow = chain_slow.advance(Link.event(UUID, want.pos.ts, want.pos.id, want.raw))
        assert chain_fast == chain_slow == linker.head and link == chain_slow.hash
        value = CODEC.encode_event(UUID, got.data, got.obj, "t", chain=link, chain_seq=linker.seq)
        record = to_record(
            UUID, want.raw, want.obj, chain=chain_slow.hash, chain_seq=chain_slow.seq
        )
        assert value == CODEC.encode_with_fastavro(AUDIT_EVENT, record, "t")


def test_event_text_converts_once_and_compares_by_value() -> None:
    text = make_events(1)[0]
    from_bytes = Event(text.encode(), None, None)
    from_text = Event(text, None, None)
    assert from_bytes.raw == text and from_text.data == text.encode()
    assert from_bytes.raw is from_bytes.raw  # cached
    assert from_bytes == from_text
    assert from_bytes.size() == len(text.encode()) and from_bytes.sha256() == from_text.sha256()


def _prepare() -> pages.Prepare:
    """The producer's ``Batcher.prepare`` for the single-object codec (no broker needed)."""
    from producer.batch import Batcher

    batcher = Batcher.__new__(Batcher)  # only server_uuid and the codec are read
    batcher.server_uuid, batcher._codec = UUID, CODEC
    prepare = Batcher.prepare(batcher)
    assert prepare is not None
    return prepare


@pytest.mark.parametrize("source", ["traffic", "samples"])
def test_events_encoded_while_parsed_give_fastavros_bytes(source: str, tmp_path: Path) -> None:
    """``split(page, prepare=...)``: each event's prefix + ``event_tail`` is fastavro's value
    for the reference's record, the parsed object is released, nothing else changes."""
    from schemas.fused import event_tail
    from tests.schemas.reference import traffic_events

    texts = traffic_events(tmp_path, 2000, seed=20261208) if source == "traffic" else None
    raws = [t.encode() for t in (texts or sample_events())]
    data = server_layout(raws, True)
    prepared = split(data, None, _prepare()).events
    slow = split(data.decode()).events
    linker = Linker(ChainState.start(UUID))
    for got, want in zip(prepared, slow, strict=True):
        assert got.data == want.raw.encode() and got.pos == want.pos and got.pos is not None
        assert got.prefix is not None and got.obj is None
        link = linker.propose(got.pos.ts, got.pos.id, got.data)
        linker.commit()
        record = to_record(UUID, want.raw, want.obj, chain=link, chain_seq=linker.seq)
        expected = CODEC.encode_with_fastavro(AUDIT_EVENT, record, "t")
        assert got.prefix + event_tail(link, linker.seq) == expected


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=strategies.events(), seq=st.integers(0, 2**63 - 1))
def test_an_event_the_prefix_cannot_encode_keeps_its_object(
    event: dict[str, Any], seq: int
) -> None:
    """Any event: with ``prepare`` either its prefix completes to the codec's value, or it
    keeps its parsed object (and no prefix) for the ordinary path."""
    from schemas.fused import event_tail

    text = json.dumps({**event, "timestamp": "2024-01-01 00:00:00", "id": 1}, ensure_ascii=False)
    try:
        piece = text.encode()
    except UnicodeEncodeError:
        return  # a lone surrogate: not on a UTF-8 page
    try:
        found = split(server_layout([piece], True), None, _prepare()).events
    except PageError:
        return  # not JSON (NaN, Infinity): the page is refused on every path
    if len(found) != 1 or found[0].pos is None:
        return  # not identified: never prepared
    got = found[0]
    if got.prefix is None:
        assert got.obj is not None
        return
    obj = orjson.loads(piece)
    expected = CODEC.encode_event(UUID, piece, obj, "t", chain="cd" * 32, chain_seq=seq)
    assert got.prefix + event_tail("cd" * 32, seq) == expected
