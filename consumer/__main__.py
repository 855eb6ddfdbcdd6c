"""``python -m consumer [setup|rotate|upload|restore] [flags]``: wiring only.

Without a subcommand: one member of the consumer group (``consumer.loop``). ``setup`` applies
the archive DDL (``consumer.setup``); ``rotate``, ``upload`` and ``restore`` belong to
``consumer.ops`` and are imported only when called.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from types import FrameType

from confluent_kafka import Consumer

from auditstream import log as logsetup
from auditstream.cli import run
from auditstream.settings import load
from consumer.config import ArchiveSettings, ConsumerSettings
from consumer.dlq import DeadLetterQueue
from consumer.loop import ConsumerLoop, PeriodicTask
from consumer.sink import Sink
from schemas.codec import Codec, for_settings

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
    loop = build(settings)

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: finishing the current batch", signum)
        loop.stop()

    # Restored afterwards: main() may run inside another program (tests, the demo).
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return loop.run()
    finally:
        loop.sink.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def build(
    s: ConsumerSettings, tasks: Sequence[PeriodicTask] = (), codec: Codec | None = None
) -> ConsumerLoop:
    """The parts of one member, wired (tests call this with settings built directly).

    ``codec`` defaults to the one the settings select (``--schema-registry-url``).
    """
    member = f"{socket.gethostname()}:{os.getpid()}"
    DeadLetterQueue.ensure(s.admin(), s.dlq_topic)
    log.info(
        "consumer starting",
        extra={"ctx": {"member": member, "group": s.group, "archive": str(s.archive())}},
    )
    return ConsumerLoop(
        Consumer(s.kafka()),
        Sink(s.archive(), member, s.insert_method),
        DeadLetterQueue(s.dlq_producer(), s.dlq_topic),
        codec or for_settings(s.schema_registry_url),
        (s.topic, s.control_topic),
        batch_rows=s.batch_rows,
        batch_bytes=s.batch_bytes,
        batch_linger_ms=s.batch_linger_ms,
        once=s.once,
        backoff_max=s.backoff_max,
        tasks=tasks,
    )


if __name__ == "__main__":
    sys.exit(run(main, sys.argv[1:]))
