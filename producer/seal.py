"""Sealing a server's chain: signed checkpoints on a schedule, and the skips ``bookmark set`` asks.

**Checkpoints** (off unless a key and ``every_events`` / ``every_seconds`` are given), in order:

1. Due when ``every_events`` links were sent since the last checkpoint, or ``every_seconds``
   passed and something new was sent; also when the loop stops or ``once`` reaches the end.
2. The loop first settles every batch in flight: only links acknowledged and bookmarked are
   signed, and the checkpoint goes after them, at the chain head.
3. Only when the chain head is the stored state (no gap after the bookmarked event, which a
   restart would re-send and hash onto the same predecessor) sign ``(checkpoint_seq,
   signed_seq, signed_chain, at, key_id)`` (``auditstream.checkpoint``) and chain the
   checkpoint as the next link.
4. Publish it on the control topic and wait for its acknowledgement.
5. Only then store the chain state after it, and its ``checkpoint_seq``, at the same bookmark
   (one UPDATE); the batcher continues the chain from it.

A crash between 4 and 5 leaves a signed checkpoint on the topic that the chain does not run
through (the next event links to the event before it): ``verify`` reports it as a note, and
the next checkpoint repeats its number. A signature cannot be forged, so such a checkpoint
still proves what it signed.

**Skips**: ``auditstream bookmark set`` moves the bookmark, keeps the chain state, and marks
the history row (``audit_config.pending_skip``). On start, before reading:

1. Read the unpublished history rows of this server, oldest first.
2. Chain each as a ``skip`` link (old position, new position, who, why) and publish them.
3. Wait for their acknowledgement.
4. Store the chain state after them and clear ``pending_skip`` (one UPDATE, guarded by the
   marker). A crash before 4 publishes the same links again with the same hashes (re-sends).

Trap: this store has its own session (the bookmark store's is not shared across objects).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from auditstream import checkpoint, metrics
from auditstream.chain import ChainState, Link
from auditstream.dsn import MySQLDsn
from auditstream.errors import ArchiveError, ConfigError
from auditstream.mysql import Connection, Error, connect, fetchall
from auditstream.signing import Signer
from auditstream.text import as_text
from producer.batch import Batcher
from producer.config import DEFAULT_DATABASE
from producer.publisher import Publisher
from schemas.codec import Codec
from schemas.mapping import TIMESTAMP_FORMAT
from schemas.registry import CONTROL_EVENT

log = logging.getLogger(__name__)

_UNKNOWN_COLUMN = 1054
_SKIPS = (
    "SELECT h.seq, h.changed_at, h.db_user, h.os_user, h.old_ts, h.old_id, h.new_ts, h.new_id, "
    "h.reason FROM audit_config c JOIN audit_config_history h ON h.server_uuid = c.server_uuid "
    "AND h.seq >= c.pending_skip WHERE c.server_uuid = %s ORDER BY h.seq"
)


class SealStore:
    """``checkpoint_seq`` and ``pending_skip`` of ``audit_config`` (its own session)."""

    def __init__(self, dsn: MySQLDsn) -> None:
        self._dsn = dsn.with_database(dsn.database or DEFAULT_DATABASE)
        self._conn: Connection | None = None

    def checkpoint_seq(self, server_uuid: str) -> int:
        """The number of the last checkpoint stored (0: none).

        Raises:
            ConfigError: ``audit_config`` lacks the column (run ``python -m producer setup``).
        """
        rows = self._query(
            "SELECT checkpoint_seq FROM audit_config WHERE server_uuid = %s", (server_uuid,)
        )
        if rows is None:
            raise ConfigError("audit_config has no checkpoint_seq: run python -m producer setup")
        return int(str(rows[0][0])) if rows and rows[0][0] is not None else 0

    def pending_skips(self, server_uuid: str) -> list[tuple[Any, ...]]:
        """The history rows still to publish as skips, oldest first (none on an old table)."""
        rows = self._query(
            "SELECT pending_skip FROM audit_config WHERE server_uuid = %s", (server_uuid,)
        )
        if not rows or rows[0][0] is None:  # audit_config_history exists only after a set
            return []
        return self._query(_SKIPS, (server_uuid,)) or []

    def sealed(self, server_uuid: str, chain: ChainState, checkpoint_seq: int) -> None:
        """Step 5: the chain state after checkpoint ``checkpoint_seq``; the bookmark stays."""
        self._write(
            "UPDATE audit_config SET chain = %s, chain_seq = %s, checkpoint_seq = %s, "
            "updated_at = UTC_TIMESTAMP(6) WHERE server_uuid = %s",
            (chain.hash, chain.seq, checkpoint_seq, server_uuid),
        )

    def skipped(self, server_uuid: str, chain: ChainState, first: int) -> None:
        """Skips step 4: the chain state after the skips that started at history row ``first``."""
        self._write(
            "UPDATE audit_config SET chain = %s, chain_seq = %s, pending_skip = NULL, "
            "updated_at = UTC_TIMESTAMP(6) WHERE server_uuid = %s AND pending_skip = %s",
            (chain.hash, chain.seq, server_uuid, first),
        )

    def close(self) -> None:
        """Close the session (best effort)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Error:
                log.debug("closing the seal session failed", exc_info=True)

    def _query(self, statement: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]] | None:
        """The rows; None when a column is missing (a table from before ``producer setup``)."""
        try:
            if self._conn is None:
                self._conn = connect(self._dsn)
            cur = self._conn.cursor()
            cur.execute(statement, params)
            rows: list[tuple[Any, ...]] = fetchall(cur)
            cur.close()
            self._conn.commit()
        except Error as exc:
            self.close()
            if getattr(exc, "errno", None) == _UNKNOWN_COLUMN:
                return None
            raise ArchiveError(f"cannot read the seal state: {exc}") from exc
        return rows

    def _write(self, statement: str, params: tuple[Any, ...]) -> None:
        try:
            if self._conn is None:
                self._conn = connect(self._dsn)
            cur = self._conn.cursor()
            cur.execute(statement, params)
            cur.close()
            self._conn.commit()
        except Error as exc:
            self.close()
            raise ArchiveError(f"cannot store the seal state: {exc}") from exc


class Seal:
    """One producer's checkpoints and skips (see the module docstring for the order).

    Args:
        store: ``audit_config``'s seal columns.
        codec: the control topic's framing.
        topic: the control topic.
        ack_timeout: seconds to wait for a checkpoint's or skip's acknowledgement.
        signer: the producer's key; None: no checkpoints (skips are still published).
        every_events: checkpoint after this many links (None: no count).
        every_seconds: checkpoint after this long when something new was sent (None: no timer).
        clock: monotonic seconds (tests).
    """

    def __init__(
        self,
        store: SealStore,
        codec: Codec,
        topic: str,
        ack_timeout: float,
        signer: Signer | None = None,
        every_events: int | None = None,
        every_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._codec = codec
        self._topic = topic
        self._timeout = ack_timeout
        self._signer = signer
        self._every_events = every_events
        self._every_seconds = every_seconds
        self._clock = clock
        self._signed_seq = 0
        self._checkpoint_seq = 0
        self._last = clock()
        self.checkpoints = 0

    def start(self, server_uuid: str, publisher: Publisher, chain: ChainState) -> ChainState:
        """Publish the pending skips (their steps 1-4); return the chain state to continue."""
        rows = self._store.pending_skips(server_uuid)
        for seq, at, db_user, os_user, old_ts, old_id, new_ts, new_id, why in rows:
            old = (_ts(old_ts), int(old_id)) if old_ts is not None else None
            new = (_ts(new_ts), int(new_id))
            actor = f"{as_text(db_user)} (os user {as_text(os_user) if os_user else '?'})"
            record = checkpoint.skip_record(server_uuid, old, new, actor, as_text(why), _utc(at))
            chain = chain.advance(Link.control(server_uuid, record))
            self._publish(publisher, chain.stamp(record))
            log.warning(
                "published the skip of history row %s", seq,
                extra={"ctx": {"server_uuid": server_uuid, "to": f"{new[0]}#{new[1]}"}},
            )  # fmt: skip
        if rows:
            publisher.wait_for(publisher.cut(), self._timeout)
            self._store.skipped(server_uuid, chain, int(rows[0][0]))
        if self._signer is not None:
            self._checkpoint_seq = self._store.checkpoint_seq(server_uuid)
            log.info(
                "sealing: checkpoints signed with key %s", self._signer.key_id,
                extra={"ctx": {"server_uuid": server_uuid, "last": self._checkpoint_seq}},
            )  # fmt: skip
        self._signed_seq = chain.seq  # a restart's tail is sealed by the next checkpoint
        self._last = self._clock()
        return chain

    def due(self, batcher: Batcher, final: bool = False) -> bool:
        """Step 1: is a checkpoint due (``final``: the loop stops or reached the end once)?"""
        if self._signer is None:
            return False
        new = batcher.chain.seq - self._signed_seq
        if new <= 0:
            return False
        if final:
            return True
        if self._every_events is not None and new >= self._every_events:
            return True
        return self._every_seconds is not None and self._clock() - self._last >= self._every_seconds

    def checkpoint(self, batcher: Batcher) -> bool:
        """Steps 3-5 after the loop settled everything (step 2); False when not possible now."""
        signer, chain = self._signer, batcher.chain
        stored = chain.stored
        if signer is None or chain.head.hash != stored.hash or stored.seq <= self._signed_seq:
            return False
        number = self._checkpoint_seq + 1
        record = checkpoint.checkpoint_record(
            signer, stored, number, checkpoint.now_ms(), stored.bookmark
        )
        after = stored.advance(Link.control(stored.server_uuid, record))
        self._publish(batcher.publisher, after.stamp(record))
        batcher.publisher.wait_for(batcher.publisher.cut(), self._timeout)  # step 4
        self._store.sealed(stored.server_uuid, after, number)  # step 5
        chain.relink(after)
        self._signed_seq, self._checkpoint_seq = after.seq, number
        self._last = self._clock()
        self.checkpoints += 1
        metrics.CHECKPOINT_TIME.labels(stored.server_uuid).set(record["at"].timestamp())
        log.info(
            "checkpoint %s signed", number,
            extra={"ctx": {"server_uuid": stored.server_uuid, "signed_seq": stored.seq}},
        )  # fmt: skip
        return True

    def close(self) -> None:
        """Close the store's session."""
        self._store.close()

    def _publish(self, publisher: Publisher, record: dict[str, Any]) -> None:
        publisher.send(self._topic, self._codec.encode(CONTROL_EVENT, record, self._topic))


def _ts(value: Any) -> str:
    return value.strftime(TIMESTAMP_FORMAT) if isinstance(value, datetime) else str(value)


def _utc(value: Any) -> datetime:
    if isinstance(value, datetime):
        v = value.replace(tzinfo=UTC) if value.tzinfo is None else value
        return v.replace(microsecond=v.microsecond // 1000 * 1000)
    return checkpoint.now_ms()
