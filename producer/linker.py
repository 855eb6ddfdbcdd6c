"""The producer's hash chain of one server: the one object that holds its state.

The loop creates the ``Linker`` from the state stored with the bookmark and asks it; the
batcher links events and gaps through it, in log order. It knows three states:

- the **head**: after the last link handed to the client (acknowledged or not);
- a batch's **mark** (``mark()``): the head right after the batch's last event, a
  ``ChainState`` value that travels with the batch until its acks, and is then stored with the
  bookmark in the same upsert (``bookmarked(mark)``);
- the **stored** state: after a failure the head goes back to it (``rewind()``), so what is
  read again is linked exactly as the first time.

Per event the head is three fields (hash bytes, hash hex, seq), not a ``ChainState``: one is
built per batch, in ``mark()``. Linking an event is two steps, because an event is a link only
once the client accepted its message:

1. ``propose(ts, id, raw)``: the hash (hex) the event gets as the next link (``seq`` + 1);
   the head does not move.
2. ``commit()``: the client accepted it; the head moves onto it. An event not committed (too
   large, not encodable) becomes a gap at its place: ``gap(record)`` links onto the same head.

Traps:

- ``propose`` again before ``commit`` forgets the first proposal; a proposal never survives a
  gap (``gap`` links onto the head, not onto the proposal).
- The mark of a batch is taken right after its last *event*, before a trailing gap (a skipped
  event after it, an unidentifiable element): the bookmark cannot move past that gap, so after
  a restart it is re-found and must hash onto the same predecessor.
- An event the broker refuses after the client accepted it was committed: later links already
  hash onto it, so its gap links at the head, not at its place. ``publisher.ensure`` holds the
  client to the topics' limits so that only a limit lowered while running gets here.
"""

from __future__ import annotations

from typing import Any

from auditstream.chain import ChainState, event_digest


class Linker:
    """Link one server's events and gaps (see the module docstring).

    Args:
        stored: the state stored with the bookmark (``ChainState.start`` for a new server).
    """

    __slots__ = ("_at", "_digest", "_hash", "_next", "_stored", "seq", "server_uuid")

    def __init__(self, stored: ChainState) -> None:
        self.server_uuid = stored.server_uuid
        self._stored = stored
        self._next: tuple[bytes, str, str, int] | None = None
        self._set(stored)

    def _set(self, state: ChainState) -> None:
        self._hash = state.hash
        self._digest = bytes.fromhex(state.hash)
        self.seq = state.seq
        self._at = state.bookmark
        self._next = None

    @property
    def head(self) -> ChainState:
        """The state after the last link handed to the client."""
        return ChainState(self.server_uuid, self._hash, self.seq, self._at)

    @property
    def stored(self) -> ChainState:
        """The state stored with the bookmark (where ``rewind`` goes back to)."""
        return self._stored

    def propose(self, ts: str, id_: int, raw: bytes) -> str:
        """Step 1: the hash (hex) of the event as the next link; number ``seq + 1``."""
        digest = event_digest(self._digest, self.server_uuid, ts, id_, raw)
        text = digest.hex()
        self._next = (digest, text, ts, id_)
        return text

    def commit(self) -> None:
        """Step 2: the proposed event is a link; the head moves onto it."""
        proposed = self._next
        assert proposed is not None, "commit() without propose()"  # noqa: S101 - a bug, not input
        self._digest, self._hash, ts, id_ = proposed
        self._at = (ts, id_)
        self.seq += 1
        self._next = None

    def gap(self, record: dict[str, Any]) -> dict[str, Any]:
        """Link a gap ``control_event`` record at the head: stamp ``chain``/``chain_seq``."""
        after = self.head.advance_gap(record)
        self._set(after)
        return after.stamp(record)

    def mark(self) -> ChainState:
        """The head as a value, to store with a batch's bookmark once the batch is acked."""
        return self.head

    def bookmarked(self, state: ChainState) -> None:
        """The bookmark was stored with ``state`` (a batch's mark): a failure rewinds to it."""
        self._stored = state

    def relink(self, state: ChainState) -> None:
        """A link sent and stored outside the batches (a checkpoint): head and stored move."""
        self._stored = state
        self._set(state)

    def rewind(self) -> None:
        """After a failure: the head goes back to the stored state (read and linked again)."""
        self._set(self._stored)
