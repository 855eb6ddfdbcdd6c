"""The goals table under the benchmark's figures, and the median of repeated runs."""

from __future__ import annotations

from bench import goals
from bench.measure import Figure
from bench.report import median_of_runs

PRODUCER = goals.PRODUCER


def test_goals_read_ratios_and_values_and_say_which_are_met() -> None:
    figures = [
        Figure(PRODUCER, "events/s", 30_000, "ev/s", baseline=4_000, limit=100_000),
        Figure(PRODUCER, "peak RSS", 350, "MB"),
        Figure(goals.E2E, "highest steady rate", 20_000, "ev/s"),
    ]
    rows = {}
    for line in goals.table(figures).splitlines()[2:]:
        stage, metric, wanted, measured, met = (c.strip() for c in line.strip("|").split("|"))
        rows[(stage, metric, wanted)] = (measured, met)
    assert rows[(PRODUCER, "events/s", ">= 25 % of limit")] == ("30 % of limit", "yes")
    assert rows[(PRODUCER, "events/s", ">= 5x baseline")] == ("7.5x baseline", "yes")
    assert rows[(PRODUCER, "peak RSS", "< 300 MB")] == ("350 MB", "**no**")
    assert rows[(goals.E2E, "highest steady rate", ">= 10,000 ev/s")] == ("20,000 ev/s", "yes")
    assert rows[(goals.E2E, "p99 @ 5,000 ev/s", "< 2,000 ms")] == ("not measured", "—")


def test_the_median_of_three_runs_is_taken_per_figure_with_every_value_in_the_note() -> None:
    runs = [
        [Figure(PRODUCER, "events/s", v, "ev/s", baseline=b, limit=lim)]
        for v, b, lim in ((10.0, 2.0, 100.0), (30.0, 3.0, 90.0), (20.0, 1.0, None))
    ]
    (merged,) = median_of_runs(runs)
    assert merged.value == 20.0
    assert merged.baseline == 2.0
    assert merged.limit == 95.0  # the median of the runs that measured it
    assert merged.note.startswith("median of 3 runs (10.0, 30.0, 20.0)")
    assert median_of_runs(runs[:1]) == runs[0]


def test_the_median_note_comes_from_a_run_that_measured_the_figure() -> None:
    runs = [
        [Figure(goals.E2E, "highest steady rate", None, "ev/s", note="no step held")],
        [Figure(goals.E2E, "highest steady rate", 5000.0, "ev/s", note="steps 1,000, 5,000")],
    ]
    (merged,) = median_of_runs(runs)
    assert merged.value == 5000.0
    assert merged.note.endswith("; steps 1,000, 5,000")
