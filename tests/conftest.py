"""Fixtures for the real components: the Kafka broker and the archive MySQL.

Test tiers (CONTRIBUTING.md): pure unit tests need none of these; tests on the components this
machine runs ask for ``kafka`` / ``mysql_server``. The broker is Apache Kafka (``make install``
fetches it) unless ``--broker tansu`` asks for the faster-starting embedded one, which skips the
``real_kafka`` tests; ``--docker`` swaps in Apache Kafka and MySQL 8.4 through testcontainers;
``KAFKA_BOOTSTRAP_SERVERS`` / ``MYSQL_TEST_DSN`` point at existing ones.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from auditstream.dsn import MySQLDsn
from tests.harness.kafka import (
    FAST_GROUP,
    Broker,
    broker_header,
    chosen_broker,
    start_broker,
)
from tests.harness.mariadb import ExternalMySQL, PrivateMariaDB, create_database, drop_database

# Fixtures of the other real components live beside their harness code.
pytest_plugins = [
    "tests.harness.emulator_fixtures",
    "tests.harness.oci_fixtures",
]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--docker",
        action="store_true",
        default=False,
        help="run against Apache Kafka and MySQL 8.4 started by testcontainers",
    )
    parser.addoption(
        "--broker",
        choices=("kafka", "tansu"),
        default=None,
        help="the embedded broker: Apache Kafka (default when installed) or Tansu (faster start, "
        "skips the real_kafka tests)",
    )


def pytest_report_header(config: pytest.Config) -> str:
    return broker_header(config)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if chosen_broker(config) == "tansu":
        skip = pytest.mark.skip(reason="needs a real Apache Kafka (not --broker tansu)")
        for item in items:
            if "real_kafka" in item.keywords:
                item.add_marker(skip)
    if not config.getoption("-m"):
        skip_long = pytest.mark.skip(reason="long variant: run with -m long")
        for item in items:
            if "long" in item.keywords:
                item.add_marker(skip_long)


@pytest.fixture(autouse=True)
def _clean_auditstream_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's ``AUDITSTREAM_*`` settings."""
    for key in list(os.environ):
        if key.startswith("AUDITSTREAM_"):
            monkeypatch.delenv(key)


# --------------------------------------------------------------------------- Kafka


@pytest.fixture(scope="session")
def kafka(request: pytest.FixtureRequest) -> Iterator[Broker]:
    """The session's one broker (see ``tests.harness.kafka`` for which one and its deviations)."""
    with start_broker(request.config) as broker:
        yield broker


@pytest.fixture
def bootstrap(kafka: Broker) -> str:
    return kafka.bootstrap


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """Names for topics and groups that no other test uses."""

    def make(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    return make


@pytest.fixture
def consumer_conf(bootstrap: str, unique_name: Callable[[str], str]) -> dict[str, Any]:
    """Consumer settings for test clients: a fresh group, fast joins, manual commits."""
    return {
        "bootstrap.servers": bootstrap,
        "group.id": unique_name("g"),
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        **FAST_GROUP,
    }


# --------------------------------------------------------------------------- MySQL


@pytest.fixture(scope="session")
def mysql_server(request: pytest.FixtureRequest) -> Iterator[PrivateMariaDB | ExternalMySQL]:
    """The session's archive server (private mariadbd unless told otherwise)."""
    given = os.environ.get("MYSQL_TEST_DSN")
    if given:
        yield ExternalMySQL(MySQLDsn.parse(given))
        return
    if request.config.getoption("--docker"):
        from testcontainers.mysql import MySqlContainer

        with MySqlContainer("mysql:8.4", root_password="test") as container:
            dsn = MySQLDsn.parse(
                f"mysql://root:test@{container.get_container_host_ip()}:"
                f"{container.get_exposed_port(3306)}"
            )
            yield ExternalMySQL(dsn)
        return
    with PrivateMariaDB().start() as server:
        yield server


@pytest.fixture
def mysql_db(mysql_server: PrivateMariaDB | ExternalMySQL) -> Iterator[MySQLDsn]:
    """A DSN selecting a fresh, empty database of this test's own."""
    dsn = create_database(mysql_server.dsn)
    yield dsn
    drop_database(dsn)
