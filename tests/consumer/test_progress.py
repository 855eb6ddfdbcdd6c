"""Per-partition progress: what --once calls caught up, what compare-and-set expects."""

from __future__ import annotations

from consumer.lag import Lag
from consumer.progress import Progress

A, B = ("progress-t", 0), ("progress-t", 1)


def test_caught_up_needs_every_partition_at_its_end_after_its_last_message() -> None:
    p = Progress(Lag())
    assert not p.caught_up()  # nothing assigned yet: not "caught up"
    p.assigned(A, None)
    p.assigned(B, 40)
    p.at_end(A, 0)  # empty partition, read from the beginning
    assert not p.caught_up()  # B has not reported its end
    p.at_end(B, 40)
    assert p.caught_up()
    p.consumed(B, 40)  # a new message arrived after the end was reported
    assert not p.caught_up()
    p.at_end(B, 41)
    assert p.caught_up()


def test_expected_follows_what_the_archive_committed_for_owned_partitions() -> None:
    p = Progress(Lag())
    p.assigned(A, None)
    p.assigned(B, 7)
    assert p.expected([A, B]) == {A: None, B: 7}
    p.archived({A: 10, B: 9})
    assert p.expected([A, B]) == {A: 10, B: 9}
    p.forget([B])
    p.archived({B: 12})  # a late commit for a partition that is gone: not remembered
    assert p.expected([A, B]) == {A: 10, B: None}
    assert not p.owns(B)
