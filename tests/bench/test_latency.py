"""The end-to-end stage's climb: which rates it tries and when a step holds."""

from __future__ import annotations

from bench.arrival import arrivals
from bench.latency import Step, climb, rates


def steady(rate: int, latency: float = 0.1, n: int = 100) -> Step:
    return Step(rate, written=rate * 10, seconds=10.0, latencies=[latency] * n, drained=True)


def test_rates_continue_up_the_1_2_5_series_to_the_top() -> None:
    assert list(rates((1_000, 2_000, 5_000), 100_000)) == [
        1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000,
    ]  # fmt: skip
    assert list(rates((200,), 200)) == [200]


def test_a_step_holds_only_with_p99_under_two_seconds_and_flat_lag() -> None:
    assert steady(5_000).held
    slow = steady(5_000, latency=2.5)
    assert not slow.held and slow.verdict == "p99 over 2 s"
    growing = Step(5_000, 50_000, 10.0, [0.1] * 50 + [1.5] * 50, drained=True)
    assert not growing.held and growing.verdict == "lag grew"
    undrained = Step(5_000, 50_000, 10.0, [0.1] * 100, drained=False)
    assert not undrained.held


def test_a_step_the_writer_could_not_write_is_the_writers_limit() -> None:
    step = Step(50_000, written=200_000, seconds=10.0, latencies=[0.1] * 100, drained=True)
    assert step.writer_limited and not step.held and step.verdict == "writer could not keep up"


def test_the_climb_stops_at_the_first_failing_step_then_tries_half_way() -> None:
    tried: list[int] = []

    def try_step(rate: int) -> Step:
        tried.append(rate)
        return steady(rate) if rate <= 12_000 else steady(rate, latency=3.0)

    steps = climb((1_000, 2_000, 5_000), 1_000_000, try_step)
    assert tried == [1_000, 2_000, 5_000, 10_000, 20_000, 15_000]
    assert max(s.rate for s in steps if s.held) == 10_000


def test_a_key_arrives_with_the_first_poll_whose_newest_key_reaches_it() -> None:
    marks = [(("2026-12-07 09:00:00", 3), 1.0), (("2026-12-07 09:00:01", 0), 2.0)]
    keys = [
        ("2026-12-07 09:00:00", 0),
        ("2026-12-07 09:00:00", 3),
        ("2026-12-07 09:00:00", 4),
        ("2026-12-07 09:00:01", 0),
        ("2026-12-07 09:00:01", 1),
    ]
    assert arrivals(keys, marks) == [1.0, 1.0, 2.0, 2.0, None]
    assert arrivals(keys, []) == [None] * 5


def test_a_step_with_rows_missing_does_not_hold_and_says_so() -> None:
    step = Step(5_000, 50_000, 10.0, [0.1] * 100, drained=False, missing=3)
    assert not step.held and step.verdict == "3 rows missing"
