"""Printing the figures: the machine block and one Markdown table, pasted as is into BENCHMARKS.md.

Ratios are computed here, from the numbers in the table, so the file cannot disagree with itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

from bench.measure import Figure


def _num(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def table(figures: Sequence[Figure]) -> str:
    """The figures as a Markdown table with their ratios to the baseline and to the limit."""
    lines = [
        "| stage | metric | value | baseline | × baseline | limit | % of limit | notes |",  # noqa: RUF001
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for f in figures:
        value = "not measured" if f.value is None else f"{_num(f.value)} {f.unit}".strip()
        ratio_b = f"{f.vs_baseline:.1f}×" if f.vs_baseline is not None else "—"  # noqa: RUF001
        ratio_l = f"{100 * f.vs_limit:.0f} %" if f.vs_limit is not None else "—"
        lines.append(
            f"| {f.stage} | {f.metric} | {value} | {_num(f.baseline)} | {ratio_b} "
            f"| {_num(f.limit)} | {ratio_l} | {f.note} |"
        )
    return "\n".join(lines)


def machine_block(info: Mapping[str, str]) -> str:
    """The machine, date and versions as a Markdown list."""
    return "\n".join(f"- **{k}**: {v}" for k, v in info.items())


def write_json(path: Path, info: Mapping[str, str], figures: Sequence[Figure]) -> None:
    """Every figure and the machine, for tools (and for diffing two runs)."""
    data = {"machine": dict(info), "figures": [asdict(f) for f in figures]}
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def median_of_runs(runs: Sequence[Sequence[Figure]]) -> list[Figure]:
    """One figure per ``(stage, metric)``: the median of the runs' values, baselines and limits.

    Ratios are then computed from the medians (as for one run). The note says every run's
    value, so the spread is visible; a figure missing from a run is left out of its median.
    """
    if len(runs) == 1:
        return list(runs[0])
    order: list[tuple[str, str]] = []
    seen: dict[tuple[str, str], list[Figure]] = {}
    for figures in runs:
        for f in figures:
            key = (f.stage, f.metric)
            if key not in seen:
                order.append(key)
                seen[key] = []
            seen[key].append(f)
    merged = []
    for key in order:
        group = seen[key]
        values = [f.value for f in group]
        spread = ", ".join(_num(v) for v in values)
        first = group[0]
        # The note describes one run: take it from the first run that measured the figure
        # (a run that did not would describe why it is missing, not the median).
        noted = next((f for f in group if f.value is not None), first)
        note = f"median of {len(runs)} runs ({spread})" + (f"; {noted.note}" if noted.note else "")
        merged.append(
            Figure(
                first.stage,
                first.metric,
                _median([f.value for f in group]),
                first.unit,
                baseline=_median([f.baseline for f in group]),
                limit=_median([f.limit for f in group]),
                note=note,
            )
        )
    return merged


def _median(values: Sequence[float | None]) -> float | None:
    known = sorted(v for v in values if v is not None)
    if not known:
        return None
    mid = len(known) // 2
    return known[mid] if len(known) % 2 else (known[mid - 1] + known[mid]) / 2
