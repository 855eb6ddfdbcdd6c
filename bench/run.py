"""One benchmark run: sizes, the components, the shared corpus, and the figures collected so far.

Stages run in order and read each other's reference figures (``Run.ref``): the limits and the
baseline come first so that every later figure is printed with its two ratios.

A stage whose component is missing or fails still yields rows in the table, with ``value=None``
and the reason - a missing figure is reported, never silently dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.corpus import Corpus
from bench.infra import EmulatedServer, Stack
from bench.measure import Figure
from bench.profile import IDLE_SUFFIX

log = logging.getLogger("bench")

NOT_LANDED = "not measured yet (component not landed)"


class Blocked(Exception):
    """A stage cannot run because a stage it needs did not (the reason is carried over)."""


@dataclass(frozen=True)
class Sizes:
    """How much each stage moves. ``QUICK`` keeps the whole run under ~3 minutes."""

    corpus_events: int
    baseline_events: int
    servers: int
    consumer_events_per_server: int
    e2e_rates: tuple[int, ...]  # the first steps; ``latency.rates`` continues above them
    e2e_step_seconds: float
    rotation_rows: int
    seed: int = 20260422
    e2e_max_rate: int = 500_000  # the climb stops here even if every step held


QUICK = Sizes(
    corpus_events=20_000,
    baseline_events=3_000,
    servers=3,
    consumer_events_per_server=5_000,
    e2e_rates=(500, 1_000, 2_000),
    e2e_step_seconds=5.0,
    e2e_max_rate=20_000,
    rotation_rows=20_000,
)
# Sized so the whole run stays within ~15 minutes on 2 shared cores at the rates measured there
# (producer and consumer 2-5k/s, dump ~25k rows/s): a stage moves enough to dwarf start-up, no
# more. The rotation table has issue 6's 1M rows; ``--rotation-rows`` makes it smaller.
FULL = Sizes(
    corpus_events=200_000,
    baseline_events=20_000,
    servers=3,
    consumer_events_per_server=40_000,
    e2e_rates=(1_000, 2_000, 5_000),  # then up the 1-2-5 series until a step fails
    e2e_step_seconds=15.0,
    rotation_rows=1_000_000,
)
TINY = Sizes(
    corpus_events=600,
    baseline_events=300,
    servers=2,
    consumer_events_per_server=300,
    e2e_rates=(200,),
    e2e_step_seconds=3.0,
    e2e_max_rate=200,
    rotation_rows=500,
)


@dataclass
class Run:
    """The state one run shares between its stages."""

    stack: Stack
    sizes: Sizes
    workdir: Path
    figures: list[Figure] = field(default_factory=list)
    refs: dict[str, float] = field(default_factory=dict)
    corpus: Corpus | None = None
    source: EmulatedServer | None = None
    failed: dict[str, str] = field(default_factory=dict)
    profile: frozenset[str] = frozenset()
    profiles: dict[str, Path] = field(default_factory=dict)
    profile_idle: bool = False  # ``--profile-idle``: waiting threads are sampled too

    def add(self, figure: Figure, ref: str | None = None) -> Figure:
        """Record a figure (and, under ``ref``, its value for later ratios)."""
        self.figures.append(figure)
        if ref is not None and figure.value is not None:
            self.refs[ref] = figure.value
        log.info("%s %s: %s %s", figure.stage, figure.metric, figure.value, figure.unit)
        return figure

    def ref(self, name: str) -> float | None:
        """A reference figure recorded earlier in the run, if it was measured."""
        return self.refs.get(name)

    def need_source(self) -> tuple[Corpus, EmulatedServer]:
        """The corpus and the emulator serving it.

        Raises:
            Blocked: the corpus stage did not run.
        """
        if self.corpus is None or self.source is None:
            raise Blocked(self.failed.get("corpus", "the corpus stage did not run"))
        return self.corpus, self.source

    def profile_out(self, component: str) -> Path | None:
        """Where to write ``component``'s py-spy profile, the first time it is asked for.

        Only the first measured run of each component is profiled (``--profile``).
        """
        if component not in self.profile or component in self.profiles:
            return None
        out = self.path(f"profiles/{component}{IDLE_SUFFIX if self.profile_idle else '.txt'}")
        self.profiles[component] = out
        return out

    def path(self, name: str) -> Path:
        """A fresh path under the run's work directory."""
        target = self.workdir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        return target


@dataclass(frozen=True)
class Stage:
    """A named step of the run and the rows it fills when it cannot run."""

    name: str
    fn: Callable[[Run], None]
    placeholders: tuple[tuple[str, str], ...]  # (stage, metric) rows reported when it fails
    always: bool = False  # runs even when --only leaves it out (later stages need it)


def run_stage(run: Run, stage: Stage) -> None:
    """Run ``stage``; on failure, report its rows as not measured with the reason."""
    log.info("stage %s", stage.name)
    before = len(run.figures)
    try:
        stage.fn(run)
    except ModuleNotFoundError as exc:
        _missing(run, stage, before, f"{NOT_LANDED}: no module {exc.name}")
    except Exception as exc:
        log.exception("stage %s failed", stage.name)
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else repr(exc)
        _missing(run, stage, before, f"failed: {type(exc).__name__}: {first}")


def _missing(run: Run, stage: Stage, before: int, why: str) -> None:
    done = {(f.stage, f.metric) for f in run.figures[before:]}
    for name, metric in stage.placeholders:
        if (name, metric) not in done:
            run.figures.append(Figure(name, metric, None, "", note=why.replace("|", "/")))
