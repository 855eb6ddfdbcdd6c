"""Object store and staging faults (OCI test server), and a broker restart on durable storage.

Each run ends with ``reconcile`` reading the dumps back from the bucket through the OCI SDK.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from consumer.targets import TargetUrl
from consumer.upload import OciOptions, OciStore
from producer.bookmark import BookmarkStore
from tests.faults.pipeline import Pipeline, kill9, make_pipeline, wait_for
from tests.harness.emulator_fixtures import EmulatorHandle
from tests.harness.kafka import MotoS3, durable_tansu
from tests.harness.mariadb import drop_database
from tests.harness.oci_server import OciTestServer


def oci_target(pipe: Pipeline, server: OciTestServer, config: Path) -> tuple[str, list[str]]:
    """An ``oci://`` target on the test server; ``pipe.dumps`` is set to read it back."""
    target = f"oci://audit@testns/{uuid.uuid4().hex[:6]}"
    options = OciOptions(config_file=config, endpoint=server.endpoint, retry_base_seconds=0.1)
    pipe.dumps = (OciStore(TargetUrl.parse(target), options), TargetUrl.parse(target))
    flags = [f"--oci-config-file={config}", f"--oci-endpoint={server.endpoint}"]
    return target, flags


def archived_and_rotated(pipe: Pipeline, count: int) -> None:
    pipe.write(count)
    pipe.producer_once("--batch-events", "200")
    pipe.consumer_once()
    pipe.rotate()


def test_503_storm_and_connections_dropped_mid_part(
    pipeline: Pipeline, oci_server: OciTestServer, oci_config: Path
) -> None:
    archived_and_rotated(pipeline, 600)
    target, flags = oci_target(pipeline, oci_server, oci_config)
    oci_server.fault("status", count=3, status=503)  # a storm on whatever comes first
    oci_server.fault("drop", count=2, method="PUT", path="/u/")  # parts cut off mid-body
    argv = pipeline.upload_argv(target, *flags, "--part-size=4096")
    code = pipeline.run(argv, "upload")
    if code != 0:  # retries may run out in a storm: the ledger resumes on the next run
        pipeline.upload(target, *flags, "--part-size=4096")
    assert any(status == 503 for _, _, status in oci_server.requests)
    assert any(m == "PUT" and "/u/" in path for m, path, _ in oci_server.requests), "no multipart"
    report = pipeline.assert_clean(600)
    assert report.keys["dump"] == 600


@pytest.fixture
def tiny_staging(tmp_path: Path) -> Iterator[Path]:
    """A 16 KiB tmpfs: the staging disk fills up during the dump."""
    path = tmp_path / "tiny"
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


def test_staging_disk_full_fails_clearly_then_resumes(
    pipeline: Pipeline, tiny_staging: Path
) -> None:
    archived_and_rotated(pipeline, 800)
    target = pipeline.file_target()
    argv = [*pipeline.upload_argv(target), f"--staging-dir={tiny_staging}"]
    assert pipeline.run(argv, "upload") != 0
    assert "staging disk is full" in pipeline.log("upload")
    assert pipeline.check().counts.get(("missing", "dump"), 0) == 0  # nothing half-uploaded
    pipeline.upload(target)
    report = pipeline.assert_clean(800)
    assert report.keys["dump"] == 800


@pytest.fixture
def durable_broker() -> Iterator[Any]:
    s3 = MotoS3().start()
    broker = durable_tansu(s3, f"tansu-{uuid.uuid4().hex[:6]}")
    try:
        broker.start()
        yield broker
    finally:
        with contextlib.suppress(Exception):
            broker.cleanup()
        s3.stop()


def test_broker_restart_with_durable_storage_loses_nothing(
    emulator_factory: Callable[..., EmulatorHandle],
    mysql_server: Any,
    durable_broker: Any,
    tmp_path: Path,
) -> None:
    """Stop the broker while both sides are running and events wait at the source; start it.

    The fault steps wait for states, never for times: the producer has created the topics and
    stored a bookmark before the consumer starts (the start-order race, which made this test
    time out once under load, has its own tests), and the 300 later events are written while
    the broker is down, so they wait across the restart on every run.
    """
    pipe = make_pipeline(emulator_factory(), durable_broker.bootstrap, mysql_server.dsn, tmp_path)
    try:
        pipe.write(600)
        producer = pipe.spawn_producer("--batch-events", "50")
        store = BookmarkStore(pipe.archive)
        wait_for(
            lambda: store.load(pipe.emu.server_uuid) is not None, 60, lambda: pipe.log("producer")
        )
        store.close()
        consumer = pipe.spawn_consumer("--batch-rows", "50")
        pipe.wait_archived(200)
        durable_broker.stop()
        pipe.write(300, seed=2)  # written while the broker is down: published after its start
        durable_broker.start()
        pipe.wait_archived(900, timeout=120)
        time.sleep(1.0)
        assert producer.poll() is None and consumer.poll() is None
        kill9(producer)
        kill9(consumer)
        pipe.assert_clean(900)
    finally:
        pipe.stop_all()
        drop_database(pipe.archive)
