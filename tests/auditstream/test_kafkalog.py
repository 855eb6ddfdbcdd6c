"""librdkafka's lines reach Python logging, rate-limited, instead of raw ``%3|...`` on stderr."""

from __future__ import annotations

import logging
import time

import pytest
from confluent_kafka import Producer

from auditstream.embedded import free_port
from auditstream.kafka import producer_config
from auditstream.kafkalog import LOGGER, RateLimit


def test_an_unreachable_broker_logs_through_python_logging_not_stderr(
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(LOGGER, "filters", [RateLimit()])  # no repeats held from other tests
    conf = producer_config(
        f"127.0.0.1:{free_port()}", {"reconnect.backoff.ms": 10, "reconnect.backoff.max.ms": 50}
    )
    producer = Producer(conf)
    with caplog.at_level(logging.DEBUG, logger="librdkafka"):
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            producer.poll(0.1)
    del producer
    err = capfd.readouterr().err
    assert "%3|" not in err and "|FAIL|" not in err, err[-2000:]
    fails = [r for r in caplog.records if r.name == "librdkafka" and "Connection refused" in r.msg]
    assert fails, [r.getMessage() for r in caplog.records]
    # Dozens of reconnects in 3 s; one line of that shape gets through per interval.
    assert len(fails) == 1, [r.getMessage() for r in fails]
    assert fails[0].ctx["facility"] == "FAIL"  # type: ignore[attr-defined]
    assert "rdkafka#producer" in fails[0].ctx["client"]  # type: ignore[attr-defined]


def test_rate_limit_counts_what_it_held_back() -> None:
    limit = RateLimit(interval=0.2)

    def record(text: str) -> logging.LogRecord:
        return logging.LogRecord(
            "librdkafka", logging.ERROR, __file__, 1, "%s [%s] %s", ("FAIL", "c-1", text), None
        )

    assert limit.filter(record("connect to 127.0.0.1:1 failed after 3ms"))
    assert not limit.filter(record("connect to 127.0.0.1:1 failed after 7ms"))
    assert not limit.filter(record("connect to 127.0.0.1:1 failed after 9ms"))
    assert limit.filter(record("another problem"))
    time.sleep(0.25)
    again = record("connect to 127.0.0.1:1 failed after 1ms")
    assert limit.filter(again)
    assert again.getMessage().endswith("(2 more like it in 0.2 s)")
