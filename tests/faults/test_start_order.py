"""Start order: consumers deployed before their topics exist (the usual order in operations).

librdkafka looks for a missing subscribed topic again only at ``topic.metadata.refresh.interval.ms``
(5 minutes by default), so a member that joined before the producer created the topics sat idle
that long. The consumer must notice the topics within seconds of their creation.
"""

from __future__ import annotations

import time

from tests.faults.pipeline import Pipeline, wait_for

#: Far below librdkafka's 5-minute metadata refresh; covers a group join on the embedded broker.
BOUND = 45.0


def test_consumers_started_before_the_topics_archive_within_seconds(pipeline: Pipeline) -> None:
    members = [pipeline.spawn_consumer() for _ in range(2)]
    # The members have joined (with nothing to consume) and said that they are waiting.
    wait_for(
        lambda: "waiting for topic" in pipeline.log("consumer"),
        60,
        lambda: pipeline.log("consumer"),
    )
    time.sleep(2)  # the group settles on its empty assignment
    pipeline.write(500)
    pipeline.producer_once("--batch-events", "100")
    created = time.monotonic()
    pipeline.wait_archived(500, timeout=BOUND)
    assert time.monotonic() - created < BOUND
    assert all(m.poll() is None for m in members), pipeline.log("consumer")
    pipeline.stop_all()
    pipeline.assert_clean(500)
