"""``kill -9`` and SIGTERM of a producer subprocess against the emulator and the real broker.

After any number of kills at random moments (seeded) and a final drain, the topic must hold
every event of the log; re-sent events may only start right after a bookmark that was stored
(so a subscriber can drop them by ``(server_uuid, timestamp, id)``), and within one run
nothing is skipped.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from auditstream.position import Position
from emulator.traffic import write_events
from ops import verify
from producer.bookmark import BookmarkStore
from tests.harness.emulator_fixtures import EmulatorHandle
from tests.producer.conftest import assert_chain_intact
from tests.producer.test_e2e import log_lines

Reader = Callable[..., list[tuple[str, dict[str, Any], Any]]]
ROOT = Path(__file__).resolve().parents[2]


def spawn(
    emu: EmulatorHandle, bootstrap: str, topics: tuple[str, str], log: Path, *extra: str
) -> subprocess.Popen[bytes]:
    password = emu.archiver_dsn.password
    assert password is not None
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITSTREAM_")}
    env["AUDITSTREAM_SOURCE_PASSWORD"] = password.get_secret_value()
    argv = [
        sys.executable, "-m", "producer",
        "--source-dsn", f"mysql://archiver@127.0.0.1:{emu.port}",
        "--bootstrap-servers", bootstrap,
        "--topic", topics[0], "--control-topic", topics[1],
        "--start-from", "earliest",
        "--read-buffer-size", "65536",
        "--batch-events", "150",
        "--idle-min", "0.05", "--idle-max", "0.2",
        *extra,
    ]  # fmt: skip
    with log.open("ab") as out:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def pos(raw: str) -> Position:
    obj = json.loads(raw)
    return Position(obj["timestamp"], obj["id"])


def assert_complete_with_bounded_duplicates(
    topic_raws: list[str], log: list[str], stored: set[Position | None]
) -> None:
    """Every event present; runs are gap-free; each re-send starts after a stored bookmark."""
    assert set(topic_raws) == set(log), "events missing from (or foreign to) the topic"
    order = [pos(r) for r in log]
    successor = dict(itertools.pairwise(order))
    predecessor: dict[Position, Position | None] = {b: a for a, b in successor.items()}
    predecessor[order[0]] = None
    previous: Position | None = None
    for raw in topic_raws:
        here = pos(raw)
        if previous is not None and here > previous:
            assert successor[previous] == here, f"skipped events between {previous} and {here}"
        elif previous is not None:
            # A restart re-sent from here: only right after a bookmark some run stored.
            assert predecessor[here] in stored, f"re-send from {here} without a stored bookmark"
        else:
            assert predecessor[here] is None or predecessor[here] in stored
        previous = here


def run_kill_trials(
    flavor: str,
    trials: int,
    seed: int,
    emulator_factory: Callable[..., EmulatorHandle],
    mysql_server: Any,
    bootstrap: str,
    topics: tuple[str, str],
    read_topic: Reader,
    tmp_path: Path,
) -> None:
    rng = random.Random(seed)
    emu = emulator_factory(flavor)
    store = BookmarkStore(mysql_server.dsn)
    store.setup()
    start = datetime(2024, 6, 1, tzinfo=UTC)
    write_events(emu.writer, 5000, seed=seed, start=start)
    stored: set[Position | None] = set()
    log = tmp_path / f"producer-{flavor}.log"
    for trial in range(trials):
        before = store.load(emu.server_uuid)
        proc = spawn(emu, bootstrap, topics, log)
        if trial % 4 == 0:
            time.sleep(rng.uniform(0.5, 5.0))  # anywhere, startup included
        else:
            # Mid-stream: once this run has stored a bookmark, between any two instructions.
            deadline = time.monotonic() + 30
            while store.load(emu.server_uuid) == before and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(rng.uniform(0.0, 0.4))
        proc.kill()
        proc.wait(10)
        stored.add(store.load(emu.server_uuid))
        # Live traffic keeps arriving while the producer is down.
        more = start + timedelta(hours=trial + 1)
        write_events(emu.writer, rng.randint(50, 400), seed=seed + trial, start=more)
    final = spawn(emu, bootstrap, topics, log, "--once")
    assert final.wait(120) == 0, log.read_text(errors="replace")[-3000:]
    expected = log_lines(emu.log_dir)
    messages = read_topic(topics[0], len(expected), timeout=60)
    got = [r["raw"] for _, r, _ in messages]
    assert_complete_with_bounded_duplicates(got, expected, stored)
    # Every re-send repeated its hash: one intact chain from the first event to the last.
    assert assert_chain_intact(emu.server_uuid, messages) == len(expected)
    # ... and so says the auditors' tool, reading the topics on its own.
    argv = ["--bootstrap-servers", bootstrap, "--topic", topics[0], "--control-topic", topics[1],
            "--idle-timeout", "2"]  # fmt: skip
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert verify.main(argv) == 0, out.getvalue()
    assert f"server {emu.server_uuid}: {len(expected)} links" in out.getvalue()
    assert len(stored - {None}) >= 2  # the kills did land mid-stream
    assert store.load(emu.server_uuid) == pos(expected[-1])


@pytest.fixture
def topics(unique_name: Callable[[str], str]) -> tuple[str, str]:
    return unique_name("ev"), unique_name("ctl")


@pytest.mark.parametrize("flavor", ["oracle", "percona"])
def test_kill_9_at_random_moments_loses_nothing(
    flavor: str,
    emulator_factory: Callable[..., EmulatorHandle],
    mysql_server: Any,
    bootstrap: str,
    topics: tuple[str, str],
    read_topic: Reader,
    tmp_path: Path,
) -> None:
    run_kill_trials(
        flavor, 3, 20261122, emulator_factory, mysql_server, bootstrap, topics, read_topic, tmp_path
    )


@pytest.mark.long
@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("flavor", ["oracle", "percona"])
def test_kill_9_many_trials(
    flavor: str,
    seed: int,
    emulator_factory: Callable[..., EmulatorHandle],
    mysql_server: Any,
    bootstrap: str,
    topics: tuple[str, str],
    read_topic: Reader,
    tmp_path: Path,
) -> None:
    run_kill_trials(
        flavor, 10, seed, emulator_factory, mysql_server, bootstrap, topics, read_topic, tmp_path
    )


def test_sigterm_finishes_the_batch_stores_its_bookmark_and_exits_0(
    emulator: EmulatorHandle,
    mysql_server: Any,
    bootstrap: str,
    topics: tuple[str, str],
    read_topic: Reader,
    tmp_path: Path,
) -> None:
    store = BookmarkStore(mysql_server.dsn)
    store.setup()
    write_events(emulator.writer, 20000, seed=9, start=datetime(2024, 7, 1, tzinfo=UTC))
    log = tmp_path / "producer.log"
    proc = spawn(emulator, bootstrap, topics, log, "--shutdown-timeout", "20")
    deadline = time.monotonic() + 60
    while store.load(emulator.server_uuid) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, log.read_text(errors="replace")[-3000:]
    bookmark = store.load(emulator.server_uuid)
    assert bookmark is not None
    expected = log_lines(emulator.log_dir)
    sent = expected[: [pos(r) for r in expected].index(bookmark) + 1]
    got = [r["raw"] for _, r, _ in read_topic(topics[0], len(sent), timeout=60)]
    assert got == sent  # everything acknowledged was bookmarked; nothing beyond it was sent
