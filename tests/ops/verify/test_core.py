"""``verify`` on link sequences: intact data passes, each kind of tampering is named where it is."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from auditstream.chain import ChainState, Link
from ops.verify import verify
from ops.verify.core import interleave, ordered
from ops.verify.report import cross_check

A = "aaaaaaaa-0000-0000-0000-000000000001"
B = "bbbbbbbb-0000-0000-0000-000000000002"


def chained(server: str, n: int, gaps: frozenset[int] = frozenset()) -> list[Link]:
    """``n`` links as a store holds them (stored hash and seq); indexes in ``gaps`` are gaps."""
    state, out = ChainState.start(server), []
    for i in range(n):
        if i in gaps:
            link = Link.gap(
                server, {"reason": "oversized", "from_timestamp": f"2024-01-01 00:00:{i:02}"}
            )
        else:
            raw = (
                f'{{"timestamp": "2024-01-01 00:00:{i:02}", "id": 0, "class": "general", "n": {i}}}'
            )
            link = Link.event(server, f"2024-01-01 00:00:{i:02}", 0, raw)
        state = state.advance(link)
        out.append(replace(link, chain=state.hash, seq=state.seq, where=f"{server[0]}-row-{i}"))
    return out


def tampers(report_findings: list[object]) -> list[str]:
    return [str(f) for f in report_findings]


def test_an_untouched_chain_with_gaps_and_interleaved_servers_is_intact() -> None:
    a, b = chained(A, 10, frozenset({3})), chained(B, 7, frozenset({0, 6}))
    mixed = [x for pair in zip(a, b + [None] * 3, strict=True) for x in pair if x is not None]
    report = verify(mixed)
    assert report.intact, tampers(report.findings)
    assert report.findings == []
    assert report.servers[A].links == 10 and report.servers[B].links == 7
    assert report.servers[A].anchored_start and report.servers[A].last == ChainState(
        A, a[-1].chain or "", 10, ("2024-01-01 00:00:09", 0)
    )


def test_re_sent_duplicates_are_recognised_as_re_sends() -> None:
    links = chained(A, 8)
    sent = links[:6] + links[3:] + links[7:]  # a producer restart re-sent 3..7, then 7 again
    report = verify(sent)
    assert report.intact, tampers(report.findings)
    assert report.servers[A].resent == 4 and report.servers[A].links == 8


def test_one_changed_character_is_altered_at_that_row_and_the_chain_resumes() -> None:
    links = chained(A, 10)
    links[4] = links[4].with_raw(links[4].fields[-1].replace("general", "genera1"))
    report = verify(links)
    assert not report.intact
    assert [(f.kind, f.seq, f.where) for f in report.findings] == [("altered", 5, "a-row-4")]
    assert report.first_break is report.findings[0]


def test_a_deleted_row_is_named_with_the_links_around_it() -> None:
    links = chained(A, 10)
    del links[4]
    report = verify(links)
    [f] = report.findings
    assert (f.kind, f.seq, f.where) == ("deleted", 6, "a-row-5")
    assert "1 link(s) missing after 2024-01-01 00:00:03#0 (seq 5..5)" in f.detail


def test_an_inserted_row_is_named_and_skipped() -> None:
    links = chained(A, 10)
    forged = replace(links[5].with_raw("{}"), seq=6, where="forged")
    report = verify([*links[:5], forged, *links[5:]])
    kinds = [(f.kind, f.where) for f in report.findings]
    assert ("inserted", "forged") in kinds and not report.intact


def test_swapped_contents_of_two_rows_are_named_as_a_pair() -> None:
    links = chained(A, 12)
    ra, rb = links[2].fields[-1], links[8].fields[-1]
    links[2], links[8] = links[2].with_raw(rb), links[8].with_raw(ra)
    report = verify(links)
    [f] = report.findings
    assert (f.kind, f.where) == ("swapped", "a-row-2")
    assert "a-row-8" in f.detail


def test_a_dead_lettered_link_is_reported_but_not_tampering() -> None:
    links = chained(A, 6)
    links[2] = replace(links[2], dead_lettered=True, where="dlq/0/17")
    report = verify(links)
    assert report.intact
    assert [(f.kind, f.where) for f in report.findings] == [("dead_lettered", "dlq/0/17")]


def test_a_link_missing_its_hash_breaks_the_chain() -> None:
    links = chained(A, 5)
    links[1] = replace(links[1], chain=None)
    report = verify(links)
    assert [f.kind for f in report.findings] == ["unchained"] and not report.intact


def test_a_run_of_links_without_hashes_is_one_finding() -> None:
    """E.g. rows archived before the producer chained: verify from --since after them."""
    links = [replace(x, chain=None, seq=None) for x in chained(B, 4)] + chained(A, 3)
    links.insert(2, replace(chained(A, 3)[0], dead_lettered=True))  # another server's note
    f, note = verify(links).findings
    assert note.kind == "dead_lettered"
    assert (f.kind, f.server_uuid, f.where) == ("unchained", B, "b-row-0")
    assert f.detail == "4 links without a chain value, up to 2024-01-01 00:00:03#0"
    # a producer upgraded to chaining starts at link 1 from the genesis value, and is checked so
    later = chained(B, 3)
    later[0] = later[0].with_raw("{}")  # link 1 no longer hashes from the genesis value
    legacy = [replace(x, chain=None, seq=None) for x in chained(B, 4)]
    assert [f.kind for f in verify(legacy + chained(B, 3)).findings] == ["unchained"]
    assert [f.kind for f in verify(legacy + later).findings] == ["unchained", "altered"]


def test_start_state_and_anchor() -> None:
    links = chained(A, 10)
    start = ChainState(A, links[3].chain or "", 4)
    assert verify(links[4:], start).intact
    assert not verify(links[5:], start).intact  # link 5 missing right after the start
    unanchored = verify(links[5:])
    assert unanchored.intact and not unanchored.servers[A].anchored_start
    anchor = {A: ChainState(A, links[9].chain or "", 10)}
    assert verify(links, anchors=anchor).intact
    cut = verify(links[:8], anchors=anchor)
    assert [f.kind for f in cut.findings] == ["truncated"]
    wrong = {A: ChainState(A, links[8].chain or "", 10)}
    assert [f.kind for f in verify(links, anchors=wrong).findings] == ["anchor_mismatch"]


@given(st.integers(6, 30), st.data())
def test_any_single_tampering_is_found_once_at_its_place(n: int, data: st.DataObject) -> None:
    links = chained(A, n, frozenset({2}))
    i = data.draw(st.integers(3, n - 2))
    op = data.draw(st.sampled_from(["alter", "delete"]))
    if op == "alter":
        links[i] = links[i].with_raw(links[i].fields[-1] + " ")
        expected = ("altered", i + 1)
    else:
        del links[i]
        expected = ("deleted", i + 2)
    report = verify(links)
    assert [(f.kind, f.seq) for f in report.findings] == [expected]


def test_interleave_slots_extras_by_seq_and_drops_those_that_do_not_join() -> None:
    links = chained(A, 12, frozenset({0, 4, 5, 11}))
    events = [x for x in links if x.kind == "event"]
    gaps = [x for x in links if x.kind == "gap"]
    assert list(interleave(events, gaps)) == links
    # a store holding only links 3..9 (one dump): gap 5-6 slots in, gaps 1 and 12 do not join
    part = [x for x in events if 3 <= (x.seq or 0) <= 9]
    assert [x.seq for x in interleave(part, gaps)] == [3, 4, 5, 6, 7, 8, 9]
    # ... but a gap right before or after the part joins it
    tail = [x for x in events if (x.seq or 0) >= 7]
    assert [x.seq for x in interleave(tail, gaps)] == [5, 6, 7, 8, 9, 10, 11, 12]


def test_cross_check_finds_a_store_rewritten_with_valid_hashes() -> None:
    original = chained(A, 2500)
    state, rewritten = ChainState(A, original[1499].chain or "", 1500), original[:1500]
    for link in original[1500:2200]:
        state = state.advance(link.with_raw(link.fields[-1] + " "))
        rewritten.append(
            replace(link.with_raw(link.fields[-1] + " "), chain=state.hash, seq=state.seq)
        )
    one, two = verify(original), verify(rewritten)
    assert one.intact and two.intact
    assert sorted(two.servers[A].checkpoints) == [1000, 2000, 2200]
    [f] = cross_check({"topic": one, "archive": two})
    assert (f.kind, f.seq, f.where) == ("diverged", 2000, "topic / archive") and f.tamper
    assert cross_check({"topic": one, "dumps": verify(original[:2200])}) == []


def test_ordered_puts_moved_links_back_within_its_window() -> None:
    links = chained(A, 30)
    moved = [*links[:5], links[20], *links[6:20], links[5], *links[21:]]
    assert list(ordered(moved)) == links
    assert list(ordered(moved, window=0)) == moved  # nothing held: arrival order
    # a byte budget of one link holds one link back: link 20 is passed by the next ones
    assert [x.seq for x in ordered(moved, max_bytes=1)][:8] == [1, 2, 3, 4, 5, 7, 8, 9]
