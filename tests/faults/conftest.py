"""Fixtures of the fault matrix: a whole pipeline per test, every subprocess stopped after it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.faults.pipeline import Pipeline, make_pipeline
from tests.harness.emulator_fixtures import EmulatorHandle
from tests.harness.mariadb import drop_database


@pytest.fixture
def pipeline_factory(
    emulator_factory: Callable[..., EmulatorHandle],
    bootstrap: str,
    mysql_server: Any,
    tmp_path: Path,
) -> Iterator[Callable[..., Pipeline]]:
    """``pipeline_factory(**emulator_kwargs)``: a fresh pipeline on the session's components."""
    made: list[Pipeline] = []

    def make(**kwargs: Any) -> Pipeline:
        emu = emulator_factory(**kwargs)
        pipe = make_pipeline(emu, bootstrap, mysql_server.dsn, tmp_path / f"p{len(made)}")
        made.append(pipe)
        return pipe

    yield make
    for pipe in made:
        pipe.stop_all()
        drop_database(pipe.archive)


@pytest.fixture
def pipeline(pipeline_factory: Callable[..., Pipeline]) -> Pipeline:
    """The default pipeline: Oracle-flavor emulator in-process."""
    return pipeline_factory()
