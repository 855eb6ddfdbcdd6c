"""Benchmark corpora: audit log directories written by the emulator's own writer and generator.

Every benchmark of a run reads the same kind of corpus (the emulator's realistic traffic mix,
fixed seed), so the baseline, the limits and the pipeline move the same bytes.

Trap: the corpus is one open log file (no rotation): the figures are about moving events,
and rotation/gzip costs of the *source* are not the pipeline's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

BASENAME, SUFFIX = "audit", "json"


@dataclass(frozen=True)
class Corpus:
    """A written log directory and what is in it."""

    log_dir: Path
    count: int
    nbytes: int
    first: tuple[str, int]
    last: tuple[str, int]

    def raw_events(self) -> list[bytes]:
        """Every event's bytes exactly as in the file (and as ``audit_log_read`` serves them)."""
        return read_raw(self.log_dir)


def read_raw(log_dir: Path) -> list[bytes]:
    """The events of ``<log_dir>/audit.json``: one per line after ``[``, trailing ``,`` removed."""
    events = []
    with (log_dir / f"{BASENAME}.{SUFFIX}").open("rb") as fh:
        for line in fh:
            body = line.rstrip()
            if body.endswith(b","):
                body = body[:-1]
            if body.startswith(b"{"):
                events.append(body)
    return events


def write(log_dir: Path, count: int, *, seed: int, flavor: str = "oracle") -> Corpus:
    """Write ``count`` generated events into ``log_dir`` (created; must not hold a log yet)."""
    from emulator.traffic import generate_events

    from emulator.logfile import AuditLogWriter

    writer = AuditLogWriter(log_dir, flavor=flavor, flush_each=False)  # type: ignore[arg-type]
    first: tuple[str, int] | None = None
    last: tuple[str, int] = ("", 0)
    written = 0
    for event in generate_events(count, seed=seed):
        last = writer.write(event)
        if first is None:
            first = last
        written += 1
    writer.close()
    if first is None:
        raise RuntimeError("the traffic generator produced no events")
    nbytes = (log_dir / f"{BASENAME}.{SUFFIX}").stat().st_size
    return Corpus(log_dir, written, nbytes, first, last)
