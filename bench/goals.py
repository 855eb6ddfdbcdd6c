"""The throughput issue's goals, checked against one run's figures (or the median of several).

Each goal names a figure of the table by ``(stage, metric)`` and what it must reach: a share of
its limit, a multiple of the baseline, or a bound on its value. The check is printed under the
table; it is information for the reader, never a test assertion (speed is not asserted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bench.measure import Figure

Kind = Literal["of limit", "x baseline", "at least", "below"]


@dataclass(frozen=True)
class Goal:
    """One goal: the figure it reads and the bound."""

    stage: str
    metric: str
    kind: Kind
    target: float
    unit: str = ""

    def measured(self, figure: Figure) -> float | None:
        """The quantity the goal bounds (a ratio, or the value itself)."""
        if self.kind == "of limit":
            return figure.vs_limit
        if self.kind == "x baseline":
            return figure.vs_baseline
        return figure.value

    def met(self, value: float) -> bool:
        """Whether ``value`` reaches the goal."""
        return value < self.target if self.kind == "below" else value >= self.target

    def describe(self, value: float | None) -> str:
        """The measured quantity in the goal's terms."""
        if value is None:
            return "not measured"
        if self.kind == "of limit":
            return f"{100 * value:.0f} % of limit"
        if self.kind == "x baseline":
            return f"{value:.1f}x baseline"
        return f"{value:,.0f} {self.unit}".strip()

    def wanted(self) -> str:
        """The bound in words."""
        if self.kind == "of limit":
            return f">= {100 * self.target:.0f} % of limit"
        if self.kind == "x baseline":
            return f">= {self.target:g}x baseline"
        sign = "<" if self.kind == "below" else ">="
        return f"{sign} {self.target:,.0f} {self.unit}".strip()


PRODUCER = "producer (emulator → broker)"
CONSUMER = "consumer x1 (broker → audit_data)"
E2E = "end to end (log → audit_data)"

GOALS: tuple[Goal, ...] = (
    Goal(PRODUCER, "events/s", "of limit", 0.25),
    Goal(PRODUCER, "events/s", "x baseline", 5.0),
    Goal(CONSUMER, "rows/s", "of limit", 0.70),
    Goal(E2E, "highest steady rate", "at least", 10_000, "ev/s"),
    Goal(E2E, "p99 @ 5,000 ev/s", "below", 2_000, "ms"),
    Goal(PRODUCER, "peak RSS", "below", 300, "MB"),
    Goal(CONSUMER, "peak RSS", "below", 300, "MB"),
    Goal(E2E, "producer peak RSS", "below", 300, "MB"),
    Goal(E2E, "consumer peak RSS", "below", 300, "MB"),
)


def table(figures: Sequence[Figure], goals: Sequence[Goal] = GOALS) -> str:
    """A Markdown table: each goal, what was measured, and whether it is met."""
    found = {(f.stage, f.metric): f for f in figures}
    lines = ["| goal | figure | wanted | measured | met |", "|---|---|---|---|---|"]
    for goal in goals:
        figure = found.get((goal.stage, goal.metric))
        value = goal.measured(figure) if figure is not None else None
        verdict = "—" if value is None else "yes" if goal.met(value) else "**no**"
        lines.append(
            f"| {goal.stage} | {goal.metric} | {goal.wanted()} | {goal.describe(value)} "
            f"| {verdict} |"
        )
    return "\n".join(lines)
