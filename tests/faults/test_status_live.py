"""``auditstream status`` on a live pipeline: the lag it shows is the pipeline's real lag."""

from __future__ import annotations

from datetime import timedelta

from ops.status import collect
from tests.faults.pipeline import START, Pipeline


def test_status_shows_how_far_behind_the_producer_really_is(pipeline: Pipeline) -> None:
    pipeline.write(2_000)
    pipeline.producer_once()
    pipeline.consumer_once()
    uuid = pipeline.emu.server_uuid
    source = pipeline.emu.archiver_dsn

    caught_up = collect(
        pipeline.archive, pipeline.archive, source, pipeline.bootstrap, pipeline.topic
    )
    server = caught_up["servers"][uuid]
    assert server["behind_seconds"] == 0
    assert server["archived_up_to"] == {
        "ts": server["bookmark"]["ts"],
        "id": server["bookmark"]["id"],
    }
    assert sum(p["archived_next_offset"] or 0 for p in caught_up["partitions"]) == 2_000

    # New audit events, one hour of event time later, that no producer has read yet.
    pipeline.write(500, start=START + timedelta(hours=1))
    behind = collect(pipeline.archive, pipeline.archive, source, None, pipeline.topic)
    assert 3_500 < behind["servers"][uuid]["behind_seconds"] <= 3_700
