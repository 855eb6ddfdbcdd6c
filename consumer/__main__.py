"""``python -m consumer [setup|rotate|upload|restore] [flags]``: wiring only.

Without a subcommand: one member of the consumer group (``consumer.loop``). ``setup`` applies
the archive DDL (``consumer.setup``); ``rotate``, ``upload`` and ``restore`` belong to
``consumer.ops`` and are imported only when called, like the rotation task
(``consumer.rotationtask``).
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from datetime import timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer

from auditstream import log as logsetup
from auditstream import metrics
from auditstream.entry import run
from auditstream.kafkalog import with_logger
from auditstream.settings import load
from consumer.config import ArchiveSettings, ConsumerSettings
from consumer.dlq import DeadLetterQueue
from consumer.loop import ConsumerLoop, PeriodicTask
from consumer.sink import Sink
from schemas.codec import Codec, for_settings

if TYPE_CHECKING:
    from consumer.rotationtask import RotationTask

log = logging.getLogger("consumer")

#: Subcommands implemented elsewhere: name -> "module:function", each ``(argv) -> int``.
OPS = {
    "rotate": "consumer.ops:rotate_main",
    "upload": "consumer.ops:upload_main",
    "restore": "consumer.ops:restore_main",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the consumer (or a subcommand); return the process exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "setup":
        return setup_main(args[1:])
    if args and args[0] in OPS:
        module, func = OPS[args[0]].split(":")
        entry: Callable[[Sequence[str]], int] = getattr(importlib.import_module(module), func)
        return entry(args[1:])
    return consume_main(args)


def setup_main(argv: Sequence[str]) -> int:
    """``consumer setup``: create or migrate the archive's tables."""
    from consumer.setup import setup

    settings = load(ArchiveSettings, argv, prog="consumer setup", section="consumer")
    logsetup.setup(json=settings.log_json)
    dsn = settings.archive()
    added = setup(dsn)
    log.info("archive ready", extra={"ctx": {"archive": str(dsn), "added_columns": added}})
    return 0


def consume_main(argv: Sequence[str]) -> int:
    """One group member: build the parts from the settings and run the loop."""
    settings = load(ConsumerSettings, argv, prog="consumer", section="consumer")
    logsetup.setup(json=settings.log_json)
    tasks = rotation_tasks(settings)
    loop = build(settings, tasks=tasks)
    if settings.metrics_port is not None:
        metrics.serve(settings.metrics_port, ready=readiness(settings))

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: finishing the current batch", signum)
        loop.stop()

    # Restored afterwards: main() may run inside another program (tests, the demo).
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return loop.run()
    finally:
        loop.sink.close()
        for task in tasks:
            task.close(timeout=settings.backoff_max)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def rotation_tasks(s: ConsumerSettings) -> list[RotationTask]:
    """Rotation inside the consumer (on by default); with ``--target`` also dump and upload.

    Any number of members may run it: one rotator acts at a time (``GET_LOCK``), and the
    ledger makes every dump and upload step resumable and exactly once.
    """
    if not s.rotate or (
        s.rotate_interval is None and not (s.rotate_max_rows or s.rotate_max_bytes)
    ):
        return []
    from consumer.opsconfig import UploadSettings
    from consumer.rotationtask import build_rotation_task

    upload = None
    if s.target is not None:
        # An entry point: OCI options (profile, endpoint, part size) come from AUDITSTREAM_*.
        upload = UploadSettings(
            archive_dsn=s.archive().url(reveal=True),
            target=s.target,
            method=s.method,
            **s.shipping(),
        )
    return [
        build_rotation_task(
            s.archive(),
            interval=s.rotate_interval,
            max_rows=s.rotate_max_rows,
            max_bytes=s.rotate_max_bytes,
            upload=upload,
            every=timedelta(seconds=s.rotate_check_seconds),
        )
    ]


def readiness(s: ConsumerSettings) -> dict[str, Callable[[], bool]]:
    """``/readyz`` checks: the archive accepts a session, the broker answers metadata."""
    from confluent_kafka.admin import AdminClient

    from auditstream import mysql

    admin = AdminClient(with_logger(s.admin()))

    def archive() -> bool:
        mysql.connect(s.archive(), connection_timeout=2).close()
        return True

    def broker() -> bool:
        admin.list_topics(timeout=2)
        return True

    return {"archive": archive, "broker": broker}


def build(
    s: ConsumerSettings, tasks: Sequence[PeriodicTask] = (), codec: Codec | None = None
) -> ConsumerLoop:
    """The parts of one member, wired (tests call this with settings built directly).

    ``codec`` defaults to the one the settings select (``--schema-registry-url``).
    """
    member = f"{socket.gethostname()}:{os.getpid()}"
    dlq_limit = DeadLetterQueue.ensure(s.admin(), s.dlq_topic, events_topic=s.topic)
    log.info(
        "consumer starting",
        extra={"ctx": {"member": member, "group": s.group, "archive": str(s.archive())}},
    )
    return ConsumerLoop(
        Consumer(s.kafka()),
        Sink(s.archive(), member, s.insert_method),
        DeadLetterQueue(s.dlq_producer(), s.dlq_topic, max_message_bytes=dlq_limit),
        codec or for_settings(s.schema_registry_url),
        (s.topic, s.control_topic),
        batch_rows=s.batch_rows,
        batch_bytes=s.batch_bytes,
        batch_linger_ms=s.batch_linger_ms,
        once=s.once,
        empty_settle=_session_seconds(s.kafka()) + 1.0,
        backoff_max=s.backoff_max,
        tasks=tasks,
    )


def _session_seconds(conf: dict[str, Any]) -> float:
    """The group session timeout the member runs with (librdkafka's default: 45 s)."""
    return int(conf.get("session.timeout.ms", 45_000)) / 1000


if __name__ == "__main__":
    sys.exit(run(main, sys.argv[1:]))
