"""CPU seconds of the processes of a stage, from ``/proc``, to print CPU time per event.

On a shared 2-core machine a rate says as much about the other users as about the pipeline;
CPU time per event, per process, does not (or much less): it is what the end-to-end stage
prints beside each step's latency (BENCHMARKS.md, "Issue 14, end to end (session 4)").

Trap: a process's ``utime + stime`` in ``/proc/<pid>/stat`` leaves out its children, and some
components are launchers (a broker started through a wrapper, a child run under py-spy), so
every named process is counted with all of its descendants - except the benchmark's own
process, whose descendants are the components themselves. A process that has exited reads
as 0: take snapshots while everything runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float, float] | None:
    """(parent pid, own CPU seconds, CPU seconds of its reaped children), or None when gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # the command name may hold spaces and ')'
    own = (int(fields[11]) + int(fields[12])) / _TICKS
    reaped = (int(fields[13]) + int(fields[14])) / _TICKS
    return int(fields[1]), own, reaped


def _table() -> tuple[dict[int, tuple[int, float, float]], dict[int, list[int]]]:
    """Every live process's ``_stat``, and each pid's live children."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) is not None:
            stats[int(entry.name)] = st
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    return stats, children


def _tree(root: int, children: Mapping[int, list[int]]) -> list[int]:
    """``root`` and its live descendants."""
    out, todo, seen = [], [root], set()
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            out.append(pid)
            todo.extend(children.get(pid, ()))
    return out


def snapshot(trees: Mapping[str, int], own: Mapping[str, int] = {}) -> dict[str, float]:
    """CPU seconds by name: ``trees`` with every descendant, ``own`` without them."""
    stats, children = _table()
    out = {}
    for name, root in trees.items():
        out[name] = sum(stats[pid][1] for pid in _tree(root, children) if pid in stats)
    for name, pid in own.items():
        out[name] = stats[pid][1] if pid in stats else 0.0
    return out


def live_descendants(root: int) -> float:
    """CPU seconds of ``root``'s live descendants so far, each with the children it reaped.

    What ``RUSAGE_CHILDREN`` does not hold yet: it counts a child only once it is reaped, so a
    component that outlives a measurement (the bench's broker and database, started once for
    every run) is missing from it. The two together count each process once: a descendant's
    time moves from here into its parent's reaped total (or ``RUSAGE_CHILDREN``) when it ends.
    """
    stats, children = _table()
    return sum(stats[pid][1] + stats[pid][2] for pid in _tree(root, children)[1:] if pid in stats)


def per_event(
    before: Mapping[str, float], after: Mapping[str, float], events: int
) -> dict[str, float]:
    """µs of CPU per event by name between two snapshots (names in both, ``events`` > 0)."""
    if events <= 0:
        return {}
    return {k: 1e6 * (after[k] - before[k]) / events for k in before if k in after}


def describe(us: Mapping[str, float]) -> str:
    """``CPU µs/event: mariadbd 50, consumer 48, ... (sum 160)``, or '' without figures."""
    if not us:
        return ""
    parts = ", ".join(f"{k} {v:.0f}" for k, v in us.items())
    return f"CPU µs/event: {parts} (sum {sum(us.values()):.0f})"
