"""``python -m bench [--quick] [--repeat N] [--only STAGE,...] [--broker B] [--json PATH]``.

With ``--repeat N`` every stage runs N times on the same components (each run with its own
corpus, topics and databases, and its own line of other processes' load); the table holds each
figure's median and the note every run's value. The goals of the throughput issue are checked
under the table. ``--broker kafka`` runs the stages on Apache Kafka instead of Tansu.

From another directory: ``make -C <checkout> bench`` or ``PYTHONPATH=<checkout>`` (``bench`` is
not installed by the wheel); nothing is read relative to the current directory.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

from auditstream import log as logsetup
from bench import goals, machine, profile, report
from bench.infra import Stack
from bench.plan import STAGES
from bench.run import FULL, QUICK, TINY, Run, run_stage


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes (< 3 minutes)")
    size.add_argument("--tiny", action="store_true", help="smoke-test sizes (tests/bench)")
    parser.add_argument(
        "--only", default="", help="comma-separated stages: " + ",".join(s.name for s in STAGES)
    )
    parser.add_argument(
        "--profile",
        default="",
        help="comma-separated components to sample with py-spy: producer,consumer",
    )
    parser.add_argument(
        "--profile-idle",
        action="store_true",
        help="--profile also samples waiting threads, per thread (py-spy --idle --threads)",
    )
    parser.add_argument(
        "--rotation-rows",
        type=int,
        help="rows in the table the rotation stage rotates and dumps (full run: 1,000,000)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="run every stage N times; report the medians"
    )
    parser.add_argument(
        "--broker",
        choices=("tansu", "kafka"),
        default="tansu",
        help="the stages' broker: Tansu (the recorded figures') or Apache Kafka (make install)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--workdir", type=Path, help="work directory (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the stages, print the machine block and the figures table; 0 when all ran."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    logsetup.setup(level=args.log_level)
    sizes = TINY if args.tiny else QUICK if args.quick else FULL
    if args.rotation_rows:
        sizes = dataclasses.replace(sizes, rotation_rows=args.rotation_rows)
    wanted = {s for s in args.only.split(",") if s}
    unknown = wanted - {s.name for s in STAGES}
    if unknown:
        print(f"unknown stage(s): {sorted(unknown)}", file=sys.stderr)
        return 2
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="auditstream-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.repeat < 1:
        print("--repeat must be at least 1", file=sys.stderr)
        return 2
    started = time.monotonic()
    load = machine.OtherLoad()
    head = machine.git_head()  # the shared checkout may move during the run
    stack = Stack.start(workdir, kind=args.broker)
    runs: list[Run] = []
    loads: list[str] = []
    try:
        for n in range(args.repeat):
            run_load = machine.OtherLoad()
            # Only the first run is profiled: a profiler slows what it samples.
            wanted_profiles = frozenset(p for p in args.profile.split(",") if p) if n == 0 else None
            run = Run(
                stack,
                sizes,
                workdir / f"run{n + 1}" if args.repeat > 1 else workdir,
                profile=wanted_profiles or frozenset(),
                profile_idle=args.profile_idle,
            )
            runs.append(run)
            for stage in STAGES:
                if not wanted or stage.name in wanted or stage.always:
                    run_stage(run, stage)
            loads.append(run_load.describe())
    finally:
        stack.close()
    figures = report.median_of_runs([r.figures for r in runs])
    info = machine.describe(shutil.which("mariadbd") or "/usr/sbin/mariadbd")
    if args.broker == "kafka":
        info["broker"] = "Apache Kafka (one KRaft node, .ci/kafka/pom.xml)"
    if info["git commit"] != head:
        info["git commit"] = f"{head} at start, {info['git commit']} at end"
    info["command"] = " ".join(["python -m bench", *argv])
    info["run time"] = f"{time.monotonic() - started:.0f} s"
    info["other load"] = load.describe()
    if len(loads) > 1:
        for n, text in enumerate(loads, 1):
            info[f"other load, run {n}"] = text
    print()
    print(report.machine_block(info))
    print()
    print(report.table(figures))
    print()
    print(goals.table(figures))
    for component, path in runs[0].profiles.items():
        print()
        print(f"profile of {component} (py-spy):")
        print(profile.summarize(path) if path.exists() else "(no profile written)")
    if args.json:
        report.write_json(args.json, info, figures)
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    logging.getLogger("bench").info("done in %.0f s", time.monotonic() - started)
    return 0 if all(f.value is not None for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
