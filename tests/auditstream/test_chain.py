"""The chain rule and the canonical form, checked against an independent re-implementation."""

from __future__ import annotations

import hashlib
import json
import struct
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from auditstream.chain import ChainState, Link, genesis
from schemas import codec
from schemas.mapping import to_record
from tests.schemas.test_codec import sample_events

UUID = "3e11fa47-71ca-11e1-9e33-c80aa9429562"


def by_hand(server_uuid: str, events: list[tuple[str, int, str]]) -> list[str]:
    """docs/tamper-evidence.md's recipe, written independently of auditstream.chain."""
    prev = hashlib.sha256(server_uuid.encode()).digest()
    out = []
    for ts, ident, raw in events:
        data = b""
        for value in ("event", server_uuid, ts, str(ident), raw):
            b = value.encode()
            data += struct.pack(">Q", len(b)) + b
        prev = hashlib.sha256(prev + data).digest()
        out.append(prev.hex())
    return out


def chain_of(events: list[tuple[str, int, str]], server: str = UUID) -> list[ChainState]:
    state, out = ChainState.start(server), []
    for ts, ident, raw in events:
        state = state.advance_event(ts, ident, raw)
        out.append(state)
    return out


def sample() -> list[tuple[str, int, str]]:
    return [(e["timestamp"], e["id"], raw) for raw in sample_events() for e in [orjson.loads(raw)]]


def test_the_real_sample_chains_exactly_as_the_documented_recipe() -> None:
    events = sample()
    states = chain_of(events)
    assert [s.hash for s in states] == by_hand(UUID, events)
    assert [s.seq for s in states] == list(range(1, 32))
    assert states[-1].bookmark == (events[-1][0], events[-1][1])


def test_genesis_is_sha256_of_the_server_uuid_and_differs_per_server() -> None:
    assert genesis(UUID) == hashlib.sha256(UUID.encode()).digest()
    assert ChainState.start(UUID).hash == genesis(UUID).hex()
    assert chain_of(sample()[:1], "a")[0].hash != chain_of(sample()[:1], "b")[0].hash


def test_a_datetime_and_the_servers_text_give_the_same_link() -> None:
    ts = datetime(2020, 10, 19, 19, 21, 33, tzinfo=UTC)
    assert (
        Link.event(UUID, ts, 0, "{}").canonical()
        == Link.event(UUID, "2020-10-19 19:21:33", 0, "{}").canonical()
    )


@pytest.mark.parametrize(
    ("ts", "text"),
    [
        (datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC), "0999-01-02 03:04:05"),
        (datetime(999, 1, 2, 3, 4, 5), "0999-01-02 03:04:05"),  # noqa: DTZ001 - a DATETIME value
        (datetime(2024, 1, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=2))), "2023-12-31 23:00:00"),
    ],
)
def test_datetimes_are_written_as_the_server_writes_timestamps(ts: datetime, text: str) -> None:
    assert Link.event(UUID, ts, 1, "{}").fields[0] == text


def test_a_gap_hashes_what_the_source_says_not_when_it_was_sent() -> None:
    gap = {"kind": "gap", "reason": "oversized", "from_timestamp": "2024-01-01 00:00:00",
           "from_id": 3, "size": 5_000_000, "sha256": None}  # fmt: skip
    resent = {**gap, "at": datetime.now(UTC), "bookmark_id": 2, "detail": "warning text"}
    state = ChainState.start(UUID)
    assert state.advance_gap(gap) == state.advance_gap(resent)
    assert state.advance_gap(gap).bookmark is None  # a gap does not move the bookmark
    assert state.advance_gap(gap) != state.advance_gap({**gap, "from_id": 4})
    # absent and empty are the same field; "0" is not
    assert state.advance_gap(gap) != state.advance_gap({**gap, "events": 0})


def test_stamped_records_round_trip_through_the_codec() -> None:
    raw = sample_events()[2]
    state = ChainState.start(UUID).advance_event("2020-10-19 19:25:51", 1, raw)
    record = state.stamp(to_record(UUID, raw, orjson.loads(raw)))
    name, back = codec.decode(codec.SingleObjectCodec().encode("audit_event", record, "t"), "t")
    link = Link.from_record(name, back, where="t")
    assert link is not None
    assert (link.chain, link.seq) == (state.hash, 1)
    assert ChainState.start(UUID).advance(link).hash == state.hash


def test_links_of_other_servers_are_refused() -> None:
    with pytest.raises(ValueError, match="on the chain of"):
        ChainState.start("a").advance(Link.event("b", "2020-01-01 00:00:00", 0, "{}"))


def test_heartbeats_are_not_links() -> None:
    assert Link.from_record("control_event", {"server_uuid": UUID, "kind": "heartbeat"}) is None


texts = st.text(max_size=30)
events_strategy = st.lists(
    st.tuples(
        st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(  # noqa: DTZ001 - hypothesis bounds are naive
            lambda d: d.strftime("%Y-%m-%d %H:%M:%S")
        ),
        st.integers(min_value=0, max_value=2**64 - 1),
        texts,
    ),
    min_size=1,
    max_size=12,
)


@given(events_strategy)
def test_chain_matches_the_recipe_for_any_events(events: list[tuple[str, int, str]]) -> None:
    assert [s.hash for s in chain_of(events)] == by_hand(UUID, events)


@given(events_strategy, st.data())
def test_changing_any_link_changes_it_and_every_later_hash(
    events: list[tuple[str, int, str]], data: st.DataObject
) -> None:
    i = data.draw(st.integers(0, len(events) - 1))
    ts, ident, raw = events[i]
    changed = list(events)
    changed[i] = (ts, ident, data.draw(texts.filter(lambda r: r != raw)))
    a, b = chain_of(events), chain_of(changed)
    assert [x.hash for x in a[:i]] == [x.hash for x in b[:i]]
    assert all(x.hash != y.hash for x, y in zip(a[i:], b[i:], strict=True))


@given(events_strategy, st.data())
def test_a_restart_from_any_stored_state_reproduces_the_same_hashes(
    events: list[tuple[str, int, str]], data: st.DataObject
) -> None:
    """A producer killed after storing state k re-sends k+1.. with the hashes of the first send."""
    k = data.draw(st.integers(0, len(events)))
    first = chain_of(events)
    stored = first[k - 1] if k else ChainState.start(UUID)
    restored = ChainState(**json.loads(json.dumps(
        {"server_uuid": stored.server_uuid, "hash": stored.hash, "seq": stored.seq}
    )))  # fmt: skip
    again = []
    for ts, ident, raw in events[k:]:
        restored = restored.advance_event(ts, ident, raw)
        again.append(restored.hash)
    assert again == [s.hash for s in first[k:]]


@given(st.lists(texts, min_size=1, max_size=4), st.lists(texts, min_size=1, max_size=4))
def test_the_canonical_form_is_unambiguous(a: list[str], b: list[str]) -> None:
    la = Link(UUID, "event", tuple(a))
    lb = Link(UUID, "event", tuple(b))
    assert (la.canonical() == lb.canonical()) == (tuple(a) == tuple(b))


@given(
    st.one_of(
        events_strategy.map(lambda e: e[0][0]),
        st.datetimes(timezones=st.one_of(st.none(), st.just(UTC))),
    ),
    st.integers(min_value=0, max_value=2**64 - 1),
    st.text(max_size=200),
    st.integers(min_value=0, max_value=2**40),
)
def test_the_fast_event_step_equals_advancing_over_the_link(
    ts: str | datetime, ident: int, raw: str, seq: int
) -> None:
    """``advance_event`` (the producer's hot path) is ``advance(Link.event(...))`` exactly."""
    state = ChainState(UUID, hashlib.sha256(str(seq).encode()).hexdigest(), seq, ("x", 1))
    expected = state.advance(Link.event(UUID, ts, ident, raw))
    assert state.advance_event(ts, ident, raw) == expected
    assert state.advance_event(ts, ident, raw.encode()) == expected  # the page's bytes
