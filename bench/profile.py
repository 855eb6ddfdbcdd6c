"""``--profile producer,consumer``: sample the pipeline's own processes with py-spy.

py-spy samples from outside the process (no instrumentation, unlike cProfile, so the profiled
rate stays close to the real one) and writes collapsed stacks; ``summarize`` turns them into
the two lists a reader needs: where the samples *are* (self) and what they are *under*
(inclusive).

Trap: a profiled run's figures carry py-spy's sampling cost and its peak RSS is py-spy's, not
the component's; take figures from a run without ``--profile``.
"""

from __future__ import annotations

import shutil
import sys
from collections import Counter
from pathlib import Path

RATE = 200  # samples per second
IDLE_SUFFIX = ".idle.txt"  # a profile that includes waiting threads (``--profile-idle``)


def py_spy() -> str:
    """The py-spy executable (the dev extra installs it next to the interpreter)."""
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise FileNotFoundError("py-spy is not installed (pip install -e '.[dev]')")
    return found


def wrap(argv: list[str], out: Path, *, idle: bool = False) -> list[str]:
    """``argv`` run under ``py-spy record`` writing collapsed stacks to ``out``.

    ``idle`` (default: ``out`` named ``*.idle.txt``, see ``--profile-idle``): also sample
    threads that wait (``--idle``), one stack root per thread (``--threads``): where a thread
    *waits* (the broker's fetch, the database) shows up too.
    """
    idle = idle or out.name.endswith(IDLE_SUFFIX)
    return [
        py_spy(),
        "record",
        "--format",
        "raw",
        "--rate",
        str(RATE),
        "--nonblocking",
        *(["--idle", "--threads"] if idle else []),
        "--output",
        str(out),
        "--",
        *argv,
    ]


def summarize(path: Path, top: int = 12) -> str:
    """The top frames by self and by inclusive samples, as two Markdown lists."""
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";")]
        total += count
        self_counts[frames[-1]] += count
        for frame in set(frames):
            incl_counts[frame] += count
    if not total:
        return f"(no samples in {path.name})"
    lines = [f"{total:,} samples at {RATE}/s ({total / RATE:.1f} s of CPU-or-wait time)", ""]
    lines.append("self (where the time is spent):")
    lines += [f"- {100 * n / total:5.1f} %  {f}" for f, n in self_counts.most_common(top)]
    lines.append("")
    lines.append("inclusive (what it is spent under):")
    lines += [f"- {100 * n / total:5.1f} %  {f}" for f, n in incl_counts.most_common(top)]
    return "\n".join(lines)


def _short(frame: str) -> str:
    """``func (path/to/module.py:123)`` → ``func (module.py)``: lines differ per sample."""
    name, _, where = frame.partition(" (")
    file = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({Path(file).name})" if file else name
