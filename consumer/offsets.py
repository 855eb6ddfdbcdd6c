"""The consumer's positions in ``audit_offsets``, read and written inside the sink's transaction.

Compare-and-set: ``read(..., lock=True)`` locks the partitions' rows (``FOR UPDATE``, in one
order so two members cannot deadlock each other), and ``compare`` refuses to go on when a stored
offset is not the one this member read from (another member archived the partition since).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from consumer.batch import TopicPartition
from consumer.errors import Fenced


def ensure(cur: Any, tps: Sequence[TopicPartition]) -> None:
    """Create missing rows (``next_offset`` NULL: nothing archived, start at the beginning)."""
    now = _now()
    for topic, partition in tps:
        cur.execute(
            "INSERT INTO audit_offsets (topic, kafka_partition, next_offset, updated_at) "
            "VALUES (%s, %s, NULL, %s) ON DUPLICATE KEY UPDATE topic = topic",
            (topic, partition, now),
        )


def read(
    cur: Any, tps: Sequence[TopicPartition], *, lock: bool
) -> dict[TopicPartition, int | None]:
    """The stored next offsets of ``tps`` (None: nothing archived); ``lock`` until commit."""
    if not tps:
        return {}
    where = " OR ".join(["(topic = %s AND kafka_partition = %s)"] * len(tps))
    cur.execute(
        f"SELECT topic, kafka_partition, next_offset FROM audit_offsets WHERE {where} "
        "ORDER BY topic, kafka_partition" + (" FOR UPDATE" if lock else ""),
        [v for tp in tps for v in tp],
    )
    rows = {(str(t), int(p)): (None if o is None else int(o)) for t, p, o in cur.fetchall()}
    return {tp: rows.get(tp) for tp in tps}


def compare(
    stored: dict[TopicPartition, int | None], expected: dict[TopicPartition, int | None]
) -> None:
    """Raise ``Fenced`` unless every stored offset is the one expected.

    Raises:
        Fenced: with the stored offsets of the partitions that moved on.
    """
    moved = {tp: v for tp, v in stored.items() if v != expected.get(tp)}
    if moved:
        raise Fenced("another member archived these partitions", moved)


def save(cur: Any, offsets: dict[TopicPartition, int], member: str) -> None:
    """Store the next offsets (the rows are locked by ``read(..., lock=True)``), one statement."""
    if not offsets:
        return
    now = _now()
    rows = sorted(offsets.items())
    cur.execute(
        "INSERT INTO audit_offsets (topic, kafka_partition, next_offset, member, updated_at) "
        f"VALUES {', '.join(['(%s, %s, %s, %s, %s)'] * len(rows))} ON DUPLICATE KEY UPDATE "
        "next_offset = VALUES(next_offset), member = VALUES(member), "
        "updated_at = VALUES(updated_at)",
        [v for (topic, partition), offset in rows for v in (topic, partition, offset, member, now)],
    )


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
