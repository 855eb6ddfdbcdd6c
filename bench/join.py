"""How long a new consumer group's first member waits for its first assignment, per broker.

Every test, the demo and every bench stage pays this once per group. Both embedded brokers are
started here (Apache Kafka only when ``make install`` fetched it), each measured with a plain
confluent-kafka consumer: librdkafka's default timeouts, then the project's ``FAST_GROUP``.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from auditstream.embedded import FAST_GROUP, TansuBroker
from auditstream.embedded_kafka import KafkaBroker, kafka_missing
from auditstream.kafkalog import with_logger
from bench.measure import Figure
from bench.run import Run

STAGE = "group join (first assignment)"
ROUNDS = 3


def first_assignment(bootstrap: str, topic: str, extra: dict[str, Any]) -> float:
    """Seconds from ``subscribe`` to the first ``on_assign`` of a fresh group's only member."""
    assigned: list[float] = []
    consumer = Consumer(
        with_logger({"bootstrap.servers": bootstrap, "group.id": f"join-{uuid.uuid4().hex}"})
        | {"partition.assignment.strategy": "cooperative-sticky", **extra}
    )
    started = time.monotonic()
    consumer.subscribe([topic], on_assign=lambda *_: assigned.append(time.monotonic()))
    try:
        while not assigned and time.monotonic() - started < 120:
            consumer.poll(0.1)
    finally:
        consumer.close()
    if not assigned:
        raise RuntimeError(f"no assignment within 120 s on {bootstrap}")
    return assigned[0] - started


def measure(name: str, start: Callable[[], Any], run: Run) -> None:
    """Start a broker, make a topic, time ``ROUNDS`` fresh groups with each client setting."""
    broker = start()
    try:
        topic = f"bench-join-{uuid.uuid4().hex[:8]}"
        admin = AdminClient(with_logger({"bootstrap.servers": broker.bootstrap}))
        for future in admin.create_topics([NewTopic(topic, 6, 1)]).values():
            future.result(30)
        for label, extra in (("default timeouts", {}), ("FAST_GROUP", dict(FAST_GROUP))):
            seconds = [first_assignment(broker.bootstrap, topic, extra) for _ in range(ROUNDS)]
            run.add(
                Figure(
                    STAGE,
                    f"{name}, {label}",
                    statistics.median(seconds),
                    "s",
                    note=f"median of {ROUNDS} new groups; max {max(seconds):.1f} s",
                )
            )
    finally:
        broker.stop()


def join_stage(run: Run) -> None:
    """Both embedded brokers, side by side."""

    def tansu() -> TansuBroker:
        workdir = run.path("join/tansu")
        workdir.mkdir(exist_ok=True)
        return TansuBroker(workdir=workdir).start()

    measure("Tansu", tansu, run)
    missing = kafka_missing()
    if missing:
        run.add(Figure(STAGE, "Apache Kafka, default timeouts", None, "s", note=missing))
        return

    def kafka() -> KafkaBroker:
        return KafkaBroker(workdir=run.path("join/kafka")).start()

    measure("Apache Kafka", kafka, run)
