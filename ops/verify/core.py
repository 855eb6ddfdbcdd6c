"""Recompute the chains over links read from a store and explain every break.

``verify`` is pure: store readers (``ops.verify.topic``/``tables``/``dumps``) turn what
they read into :class:`~auditstream.chain.Link` objects in chain order (per server; servers may
interleave, as in a Kafka partition) and it checks, for each link ``n`` of a server::

    SHA-256(stored chain_(n-1) || canonical(link_n)) == stored chain_n

After a break it resynchronises on the stored value, so each tampering is reported once, where it
is, instead of every later link failing. How a break is explained (best effort; the hashes alone
decide that data is not intact):

1. ``resent``: a link repeats one already seen with the same hash (a producer re-send): not a
   break.
2. ``inserted``: the link fails, and the next one verifies against the link *before* it.
3. ``deleted``: the link fails and its ``seq`` skips numbers (the missing count is reported).
4. ``swapped``: two failed events both verify once their raw texts (or everything but their
   keys) are exchanged back.
5. ``altered``: any other failure: this link's content, or the chain value stored with the link
   before it, was changed (the chain resumes after it).
6. ``dead_lettered``: a link the reader found in the dead-letter topic: reported, not a break.

Trap: a break right after the start of a range cannot be told apart from a wrong start; give the
state before the range (``start``) or start from the genesis (seq 1) to anchor it.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace

from auditstream.chain import ChainState, Link, genesis
from ops.verify.report import (
    CHECKPOINT_EVERY,
    Finding,
    ServerSummary,
    VerifyReport,
)

_RECENT = 100_000  # links remembered per server to recognise re-sends (one batch suffices)
_SWAP_CANDIDATES = 64


@dataclass
class _Pending:
    link: Link
    prev: bytes
    prev_seq: int | None
    kind: str
    detail: str


@dataclass
class _Server:
    uuid: str
    summary: ServerSummary
    prev: bytes | None = None
    prev_seq: int | None = None
    last: Link | None = None  # the last link accepted (verified or resynchronised on)
    pending: _Pending | None = None
    # seq (or chain) -> (chain, the predecessor's 32 bytes): a copy is the same link when it has
    # the same chain and hashes to it from the same predecessor (no raw texts kept in memory)
    recent: OrderedDict[int | str, tuple[str, bytes | None]] = field(default_factory=OrderedDict)
    unchained: int = 0  # links without a hash in the current run (reported once per run)
    unchained_at: int = 0  # index of that run's finding (findings are only removed in finish)
    altered: list[tuple[Finding, _Pending]] = field(default_factory=list)


class _Verifier:
    def __init__(self, start: Mapping[str, ChainState], anchors: Mapping[str, ChainState]):
        self.start = start
        self.anchors = anchors
        self.report = VerifyReport()
        self.servers: dict[str, _Server] = {}

    def server(self, link: Link) -> _Server:
        s = self.servers.get(link.server_uuid)
        if s is None:
            s = _Server(link.server_uuid, ServerSummary())
            self.report.servers[link.server_uuid] = s.summary
            given = self.start.get(link.server_uuid)
            if given is not None:
                s.prev, s.prev_seq = bytes.fromhex(given.hash), given.seq
                s.summary.anchored_start = True
            elif link.seq == 1:
                s.prev, s.prev_seq = genesis(link.server_uuid), 0
                s.summary.anchored_start = True
            self.servers[link.server_uuid] = s
        return s

    def feed(self, link: Link) -> None:
        s = self.server(link)
        if self._resent(s, link):
            return
        if s.pending is not None:
            p, s.pending = s.pending, None
            if _ok(p.prev, link) and (
                link.seq is None or p.prev_seq is None or link.seq == p.prev_seq + 1
            ):
                self._find(
                    s,
                    "inserted",
                    p.link,
                    "not part of the chain: the next link follows the one before it",
                )
                self._accept(s, link)
                return
            self._settle(s, p)
        if link.chain is None:
            s.unchained += 1
            if s.unchained == 1:
                self._find(s, "unchained", link, "the store holds no chain value for this link")
                s.unchained_at = len(self.report.findings) - 1
            else:  # one finding per run of unchained links (e.g. rows older than the chain)
                first = self.report.findings[s.unchained_at]
                self.report.findings[s.unchained_at] = replace(
                    first,
                    detail=f"{s.unchained} links without a chain value, up to {link.position}",
                )
            s.prev, s.prev_seq = None, link.seq
            return
        if s.prev is None and link.seq == 1:  # a chain started after unchained rows (upgrade)
            s.prev, s.prev_seq = genesis(link.server_uuid), 0
        if s.prev is None:  # unanchored start (or after an unchained link): trust the stored hash
            self._accept(s, link)
            return
        if _ok(s.prev, link):
            self._accept(s, link)
            return
        kind = "altered"
        detail = "does not hash to its chain value from the previous link's (this row changed, "
        detail += "or the previous row's chain value)"
        if link.seq is not None and s.prev_seq is not None and link.seq > s.prev_seq + 1:
            missing = link.seq - s.prev_seq - 1
            kind = "deleted"
            detail = (
                f"{missing} link(s) missing after {_position(s.last)} "
                f"(seq {s.prev_seq + 1}..{link.seq - 1})"
            )
        s.pending = _Pending(link, s.prev, s.prev_seq, kind, detail)

    def finish(self) -> VerifyReport:
        for s in self.servers.values():
            if s.pending is not None:
                p, s.pending = s.pending, None
                self._settle(s, p)
            if s.last is not None:
                s.summary.last = _state(s.last)
            self._pair_swaps(s)
            anchor = self.anchors.get(s.uuid)
            last = s.summary.last
            if anchor is not None and (last is None or last.seq < anchor.seq):
                self.report.findings.append(
                    Finding(
                        "truncated",
                        s.uuid,
                        last.seq if last else None,
                        str(last.bookmark) if last else "-",
                        "end of store",
                        f"the anchor has link {anchor.seq}: links after the last are missing",
                    )
                )
        return self.report

    # ------------------------------------------------------------------ helpers

    def _resent(self, s: _Server, link: Link) -> bool:
        key: int | str | None = link.seq if link.seq is not None else link.chain
        if key is None or key not in s.recent:
            if link.seq is not None and s.prev_seq is not None and link.seq <= s.prev_seq:
                self._find(
                    s, "inserted", link, f"repeats link number {link.seq} with other content"
                )
                return True
            return False
        chain, prev = s.recent[key]
        if chain == link.chain and (prev is None or _ok(prev, link)):
            s.summary.resent += 1
            return True
        self._find(s, "inserted", link, f"conflicts with link {key} seen before")
        return True

    def _accept(self, s: _Server, link: Link) -> None:
        assert link.chain is not None  # noqa: S101 - checked by the callers
        before, s.prev = s.prev, bytes.fromhex(link.chain)
        s.unchained = 0
        s.prev_seq = link.seq
        s.summary.links += 1
        if s.summary.first is None:
            s.summary.first = _state(link)
        last = s.last
        if last is not None and last.seq is not None and last.seq % CHECKPOINT_EVERY:
            s.summary.checkpoints.pop(last.seq, None)  # only the last one is kept
        s.last = link  # summary.last is built in finish (one object per link is measurable)
        if link.seq is not None:
            s.summary.checkpoints[link.seq] = link.chain
        key = link.seq if link.seq is not None else link.chain
        s.recent[key] = (link.chain, before)
        if len(s.recent) > _RECENT:
            s.recent.popitem(last=False)
        if link.dead_lettered:
            s.summary.dead_lettered += 1
            self._find(s, "dead_lettered", link, "in the dead-letter topic, not in the store")
        anchor = self.anchors.get(s.uuid)
        if anchor is not None and link.seq == anchor.seq and link.chain != anchor.hash:
            self._find(s, "anchor_mismatch", link, f"the anchor says {anchor.hash}")

    def _settle(self, s: _Server, p: _Pending) -> None:
        finding = self._find(s, p.kind, p.link, p.detail)
        if p.kind == "altered" and p.link.kind == "event":
            s.altered.append((finding, p))
            del s.altered[:-_SWAP_CANDIDATES]
        self._accept(s, p.link)  # resynchronise on the stored value
        s.summary.links -= 1  # ... but a broken link is not a verified one

    def _pair_swaps(self, s: _Server) -> None:
        used: set[int] = set()
        for i, (fa, a) in enumerate(s.altered):
            for j in range(i + 1, len(s.altered)):
                fb, b = s.altered[j]
                if i in used or j in used:
                    continue
                what = _exchanged(a, b)
                if what is not None:
                    used |= {i, j}
                    idx = self.report.findings.index(fa)
                    self.report.findings[idx] = Finding(
                        "swapped", s.uuid, a.link.seq, a.link.position, a.link.where,
                        f"{what} exchanged with seq={b.link.seq} bookmark={b.link.position} "
                        f"at {b.link.where}",
                    )  # fmt: skip
                    self.report.findings.remove(fb)

    def _find(self, s: _Server, kind: str, link: Link, detail: str) -> Finding:
        finding = Finding(kind, s.uuid, link.seq, link.position, link.where, detail)
        self.report.findings.append(finding)
        return finding


def _exchanged(a: _Pending, b: _Pending) -> str | None:
    """What two broken event links exchanged, if exchanging it back repairs both."""
    raw_a, raw_b = a.link.fields[-1], b.link.fields[-1]
    if _ok(a.prev, a.link.with_raw(raw_b)) and _ok(b.prev, b.link.with_raw(raw_a)):
        return "raw text"
    # every column but the key: the rows hold each other's content under their own key
    key_a, key_b = a.link.fields[:2], b.link.fields[:2]
    if _ok(a.prev, replace(a.link, fields=(*key_b, raw_a))) and _ok(
        b.prev, replace(b.link, fields=(*key_a, raw_b))
    ):
        return "content (all but the key)"
    return None


def ordered(
    links: Iterable[Link], window: int = 10_000, max_bytes: int = 64 << 20
) -> Iterator[Link]:
    """``links`` in chain order (by ``seq``, per server) when they arrive in key order.

    Stores are read in key order ``(ts, id)``, which is chain order unless someone moved rows
    (e.g. exchanged everything but the key of two rows); sorting within a sliding ``window``
    puts moved links back where their number says, so a move reads as two changed rows, not as
    a cascade of breaks. The servers' order is kept; a link without ``seq`` stays where it is.
    The window holds at most ``window`` links and about ``max_bytes`` of raw text (events reach
    4 MB), whichever is less.
    """
    heap: list[tuple[str, int, int, Link]] = []
    last: dict[str, int] = {}
    held = 0
    for n, link in enumerate(links):
        seq = link.seq if link.seq is not None else last.get(link.server_uuid, 0)
        last[link.server_uuid] = seq
        heapq.heappush(heap, (link.server_uuid, seq, n, link))
        held += len(link.fields[-1])
        while len(heap) > window or (held > max_bytes and len(heap) > 1):
            out = heapq.heappop(heap)[3]
            held -= len(out.fields[-1])
            yield out
    while heap:
        yield heapq.heappop(heap)[3]


def _ok(prev: bytes, link: Link) -> bool:
    return link.chain is not None and link.hash_after(prev).hex() == link.chain


def _position(link: Link | None) -> str:
    return link.position if link is not None else "(start of range)"


def _state(link: Link) -> ChainState:
    bookmark = (link.fields[0], int(link.fields[1])) if link.kind == "event" else None
    return ChainState(link.server_uuid, link.chain or "", link.seq or 0, bookmark)


def interleave(stream: Iterable[Link], extras: Iterable[Link]) -> Iterator[Link]:
    """``stream`` with ``extras`` (gaps, dead letters) slotted in by ``seq``, per server.

    Store readers stream the events in chain order and hold the few gaps and dead letters in
    memory: an extra is yielded just before the first link of its server with a greater ``seq``.
    Trap: a store may hold only part of a chain (one dump, a range), while the extras come from
    the whole history; so before a server's first link and after its last, only extras whose
    numbers join up with it (``first - 1, first - 2, ...`` and ``last + 1, ...``) are yielded.
    """
    queued: dict[str, list[tuple[int, int, Link]]] = defaultdict(list)
    for n, link in enumerate(extras):
        heapq.heappush(queued[link.server_uuid], (link.seq or 0, n, link))
    last: dict[str, int | None] = {}
    for link in stream:
        heap = queued.get(link.server_uuid)
        if heap and link.seq is not None:
            before = []
            while heap and heap[0][0] < link.seq:
                before.append(heapq.heappop(heap)[2])
            if link.server_uuid not in last:
                before = _joined(before[::-1], link.seq, -1)[::-1]
            yield from before
        last[link.server_uuid] = link.seq
        yield link
    for server, end in last.items():
        if end is not None:
            rest = [heapq.heappop(queued[server])[2] for _ in range(len(queued[server]))]
            yield from _joined([x for x in rest if (x.seq or 0) > end], end, 1)


def _joined(links: list[Link], seq: int, step: int) -> list[Link]:
    """The leading run of ``links`` numbered ``seq + step, seq + 2 * step, ...``."""
    out: list[Link] = []
    for link in links:
        if link.seq != seq + step * (len(out) + 1):
            break
        out.append(link)
    return out


def verify(
    links: Iterable[Link],
    start: ChainState | Mapping[str, ChainState] | None = None,
    *,
    anchors: Mapping[str, ChainState] | None = None,
) -> VerifyReport:
    """Recompute the chain(s) over ``links`` and report every break with its location.

    Args:
        links: in chain order per server (servers may interleave); re-sent duplicates allowed.
        start: the state before the first link (one server) or one per server. Without it a
            server's first link is checked against the genesis value when its ``seq`` is 1, and
            trusted otherwise (``ServerSummary.anchored_start`` says which).
        anchors: the latest link per server from a trusted anchor; the store must hold it.

    Returns:
        The report; ``report.intact`` is the verdict.
    """
    if isinstance(start, ChainState):
        start = {start.server_uuid: start}
    verifier = _Verifier(start or {}, anchors or {})
    for link in links:
        verifier.feed(link)
    return verifier.finish()
