"""Benchmark corpora: audit log directories written by the emulator's own writer and generator.

Every benchmark of a run reads the same kind of corpus (the emulator's realistic traffic mix,
fixed seed), so the baseline, the limits and the pipeline move the same bytes.

Trap: the corpus is one open log file (no rotation): the figures are about moving events,
and rotation/gzip costs of the *source* are not the pipeline's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

BASENAME, SUFFIX = "audit", "log"  # the emulator's default file, audit.log


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
    """The events of ``<log_dir>/audit.log``: one per line after ``[``, trailing ``,`` removed."""
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
    """Write ``count`` generated events into ``log_dir`` (the plugin's spacing, one file)."""
    from emulator.logfile import AuditLogWriter, event_key
    from emulator.traffic import write_events

    writer = AuditLogWriter(
        log_dir,
        flavor=flavor,  # type: ignore[arg-type]
        basename=BASENAME,
        suffix=SUFFIX,
        flush_each=False,
    )
    written = write_events(writer, count, seed)
    last = writer.last
    writer.close()
    path = log_dir / f"{BASENAME}.{SUFFIX}"
    with path.open("rb") as fh:
        fh.readline()  # "["
        first = event_key(fh.readline().rstrip().removesuffix(b","))
    if last is None or written != count:
        raise RuntimeError(f"the traffic generator wrote {written} of {count} events")
    return Corpus(log_dir, written, path.stat().st_size, first, last)


def write_empty(log_dir: Path) -> None:
    """An audit log with no event yet (the live file holds only ``[``)."""
    from emulator.logfile import AuditLogWriter

    AuditLogWriter(log_dir, basename=BASENAME, suffix=SUFFIX).close()
