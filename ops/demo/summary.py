"""What the demo reports: the counts of every stage, and whether they agree."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Summary:
    """The counts every stage reports; the demo passes when they agree."""

    generated: int = 0
    oversized: int = 0
    published: int = 0
    gaps: int = 0
    #: every control event in the control topic (gaps, checkpoints, skips, heartbeats)
    controls: int = 0
    archived: int = 0
    controls_archived: int = 0
    in_rotated_tables: int = 0
    in_verified_objects: int = 0
    objects: list[str] = field(default_factory=list)
    metrics_seen: bool = False
    ready_seen: bool = False
    elapsed: float = 0.0
    #: --seal: verify passed with the signed checkpoints (None: not asked)
    sealed: bool | None = None

    def ok(self) -> bool:
        """True when nothing was lost and nothing was duplicated, stage by stage."""
        return (
            self.published + self.gaps == self.generated
            and self.gaps >= self.oversized
            and self.archived == self.published
            and self.controls_archived == self.controls
            and self.in_rotated_tables == self.archived
            and self.in_verified_objects == self.in_rotated_tables
            and self.sealed is not False
        )


def print_summary(summary: Summary, kept: Path | None) -> None:
    """The counts as a table (rich)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="mysql-audit-stream demo")
    table.add_column("stage")
    table.add_column("events", justify="right")
    rows = [
        ("generated (audit log files)", summary.generated),
        ("  larger than the 4 MB read buffer", summary.oversized),
        ("published to Kafka", summary.published),
        ("gaps reported (control topic)", summary.gaps),
        ("archived (audit_data)", summary.archived),
        ("in rotated tables", summary.in_rotated_tables),
        ("in verified objects", summary.in_verified_objects),
    ]
    for label, value in rows:
        table.add_row(label, f"{value:,}")
    table.add_row(
        "control events: topic / archived",
        f"{summary.controls:,} / {summary.controls_archived:,}",
    )
    table.add_row("objects (manifests)", ", ".join(summary.objects) or "-")
    table.add_row("/metrics and /readyz answered", f"{summary.metrics_seen} / {summary.ready_seen}")
    if summary.sealed is not None:
        table.add_row(
            "verify with the signed checkpoints", "passed" if summary.sealed else "FAILED"
        )
    table.add_row("elapsed", f"{summary.elapsed:.1f} s")
    console = Console()
    console.print(table)
    console.print(
        "[bold green]OK[/]: every stage agrees" if summary.ok() else "[bold red]MISMATCH[/]"
    )
    if kept:
        console.print(f"work directory kept: {kept}")


def say(text: str) -> None:
    """One progress line."""
    print(f"demo: {text}", flush=True)
