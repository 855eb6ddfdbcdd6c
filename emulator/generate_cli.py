"""``python -m emulator generate``: write a reproducible corpus of audit events to log files."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from emulator.logfile import AuditLogWriter
from emulator.traffic import write_events


def main(argv: Sequence[str]) -> int:
    """Write ``--count`` events (optionally paced at ``--rate`` events/s); print the figures."""
    p = argparse.ArgumentParser(prog="python -m emulator generate", description=__doc__)
    p.add_argument("--log-dir", type=Path, required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--flavor", choices=("oracle", "percona"), default="oracle")
    p.add_argument("--log-file", default=None, help="default audit.log / audit_filter.log")
    p.add_argument(
        "--rate", type=float, default=0.0, help="events/s to pace at (0: as fast as possible)"
    )
    p.add_argument("--oversized-share", type=float, default=0.0)
    p.add_argument("--rotate-on-size", type=int, default=0)
    p.add_argument("--compress", action="store_true")
    p.add_argument(
        "--compact", action="store_true", help="orjson spacing (faster) instead of the plugin's"
    )
    p.add_argument("--start", help="UTC timestamp of the first event, YYYY-MM-DD hh:mm:ss")
    args = p.parse_args(list(argv))
    default = "audit_filter.log" if args.flavor == "percona" else "audit.log"
    basename, _, suffix = (args.log_file or default).rpartition(".")
    writer = AuditLogWriter(
        args.log_dir,
        flavor=args.flavor,
        basename=basename,
        suffix=suffix,
        rotate_on_size=args.rotate_on_size,
        compress=args.compress,
        flush_each=False,
    )
    start = (
        datetime.strptime(args.start, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        if args.start
        else None
    )
    began = time.perf_counter()
    written = 0
    batch = max(1, int(args.rate)) if args.rate else args.count
    while written < args.count:
        n = min(batch, args.count - written)
        tick = time.perf_counter()
        written += write_events(
            writer,
            n,
            args.seed + written,
            oversized_share=args.oversized_share,
            start=datetime.now(UTC) if args.rate else start,
            compact=args.compact,
            events_per_second=args.rate or 1000.0,
            with_startup=written == 0,
        )
        if args.rate:
            time.sleep(max(0.0, n / args.rate - (time.perf_counter() - tick)))
    writer.close()
    took = time.perf_counter() - began
    print(
        f"wrote {written} events in {took:.2f}s ({written / took:,.0f} events/s) to {args.log_dir}"
    )
    return 0
