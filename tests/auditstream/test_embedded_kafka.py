"""The Apache Kafka runner: start-up details that made the suite fail at random."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient

from auditstream.embedded_kafka import KafkaBroker, kafka_missing


@pytest.mark.skipif(kafka_missing() is not None, reason="Apache Kafka not installed (make kafka)")
def test_a_cluster_id_that_starts_with_a_dash_still_formats_and_starts() -> None:
    """URL-safe base64 ids start with "-" one time in 64; "-t ID" took it for a flag."""
    broker = KafkaBroker(cluster_id="-Ab3mZqRSWq2m9V7cXJ0Fw")
    try:
        broker.start()
        cluster = AdminClient({"bootstrap.servers": broker.bootstrap}).list_topics(timeout=10)
        assert cluster.cluster_id == "-Ab3mZqRSWq2m9V7cXJ0Fw"
    finally:
        broker.cleanup()
