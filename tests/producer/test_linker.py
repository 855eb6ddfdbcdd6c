"""``producer.linker.Linker`` is the reference chain (``ChainState.advance`` over ``Link``s).

The producer's hot path keeps the chain head as plain fields and builds a ``ChainState`` only
per batch; every state it hands out (head, mark, stored) must be the one that advancing the
reference state over the same links gives, whatever the order of events, refused events, gaps,
marks, rewinds and restarts.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditstream.chain import ChainState, Link, event_digest
from producer.linker import Linker
from producer.page import split
from tests.producer.conftest import UUID, sample_events

timestamps = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(  # noqa: DTZ001 - hypothesis bounds are naive
    lambda d: d.strftime("%Y-%m-%d %H:%M:%S")
)
events = st.tuples(timestamps, st.integers(0, 2**64 - 1), st.text(max_size=40))
gaps = st.fixed_dictionaries(
    {
        "reason": st.sampled_from(["oversized", "too_large_for_topic", "invalid_event"]),
        "from_timestamp": st.none() | timestamps,
        "from_id": st.none() | st.integers(0, 2**40),
        "events": st.none() | st.just(1),
        "sha256": st.none() | st.text("0123456789abcdef", min_size=64, max_size=64),
    }
)
#: ("event", e) linked; ("refused", e) proposed, not accepted, its gap instead; ("gap", g);
#: ("mark",) a batch ends; ("stored",) the last mark was stored; ("rewind",) a failure.
steps = st.lists(
    st.one_of(
        st.tuples(st.just("event"), events),
        st.tuples(st.just("refused"), events, gaps),
        st.tuples(st.just("gap"), gaps),
        st.tuples(st.just("mark")),
        st.tuples(st.just("stored")),
        st.tuples(st.just("rewind")),
    ),
    max_size=30,
)


def start(seq: int) -> ChainState:
    if not seq:
        return ChainState.start(UUID)
    return ChainState(UUID, hashlib.sha256(str(seq).encode()).hexdigest(), seq, ("x", 1))


@given(steps, st.integers(0, 2**40))
def test_any_sequence_of_links_gives_the_reference_states(steps: list[Any], seq: int) -> None:
    ref = stored = mark = start(seq)
    linker = Linker(stored)
    for step in steps:
        kind = step[0]
        if kind in ("event", "refused"):
            ts, ident, raw = step[1]
            want = ref.advance(Link.event(UUID, ts, ident, raw))
            assert linker.propose(ts, ident, raw.encode()) == want.hash
            assert linker.seq + 1 == want.seq
            if kind == "event":
                linker.commit()
                ref = want
            else:  # not accepted: its gap takes its place, on the same predecessor
                record = dict(step[2])
                linker.gap(record)
                ref = ref.advance_gap(step[2])
                assert (record["chain"], record["chain_seq"]) == (ref.hash, ref.seq)
        elif kind == "gap":
            record = dict(step[1])
            linker.gap(record)
            ref = ref.advance_gap(step[1])
            assert (record["chain"], record["chain_seq"]) == (ref.hash, ref.seq)
        elif kind == "mark":
            mark = linker.mark()
            assert mark == ref
        elif kind == "stored":
            linker.bookmarked(mark)
            stored = mark
        else:
            linker.rewind()
            ref = stored
        assert linker.head == ref
        assert linker.stored == stored


def test_a_proposal_is_not_a_link_until_committed() -> None:
    linker = Linker(ChainState.start(UUID))
    before = linker.head
    first = linker.propose("2024-01-01 00:00:00", 1, b"{}")
    assert linker.head == before
    linker.gap({"reason": "invalid_event"})  # the proposal does not survive a gap
    with pytest.raises(AssertionError):
        linker.commit()
    again = linker.propose("2024-01-01 00:00:00", 1, b"{}")
    assert again != first  # now after the gap
    linker.commit()
    assert linker.head.seq == 2 and linker.head.bookmark == ("2024-01-01 00:00:00", 1)


def test_a_gap_keeps_the_bookmark_of_the_last_event() -> None:
    linker = Linker(ChainState.start(UUID))
    linker.propose("2024-01-01 00:00:00", 7, b"{}")
    linker.commit()
    linker.gap({"reason": "oversized"})
    assert linker.mark().bookmark == ("2024-01-01 00:00:00", 7)


def test_relink_moves_head_and_stored() -> None:
    linker = Linker(ChainState.start(UUID))
    other = start(5)
    linker.relink(other)
    assert linker.head == linker.stored == other
    linker.propose("2024-01-01 00:00:00", 1, b"{}")
    linker.rewind()
    assert linker.head == other


@given(
    timestamps,
    st.integers(0, 2**64 - 1),
    st.binary(max_size=200),
    st.binary(min_size=32, max_size=32),
)
def test_event_digest_is_the_links_hash(ts: str, ident: int, raw: bytes, previous: bytes) -> None:
    text = raw.decode("utf-8", "replace")
    assert event_digest(previous, UUID, ts, ident, text.encode()) == Link.event(
        UUID, ts, ident, text
    ).hash_after(previous)


@pytest.mark.parametrize("source", ["traffic", "samples"])
def test_samples_and_held_out_events_chain_as_the_reference(source: str, tmp_path: Path) -> None:
    """The real sample and 2,000 held-out traffic events, as the page's bytes: same states."""
    from tests.schemas.reference import traffic_events

    texts = traffic_events(tmp_path, 2000, seed=20261208) if source == "traffic" else None
    raws = [t.encode() for t in (texts or sample_events())]
    page = split(b"[\n" + b",\n".join(raws) + b"\n]")
    assert len(page.events) == len(raws)
    ref = ChainState.start(UUID)
    linker = Linker(ref)
    for event in page.events:
        assert event.pos is not None
        ref = ref.advance(Link.event(UUID, event.pos.ts, event.pos.id, event.raw))
        assert linker.propose(event.pos.ts, event.pos.id, event.data) == ref.hash
        linker.commit()
        assert linker.seq == ref.seq
    assert linker.mark() == ref
