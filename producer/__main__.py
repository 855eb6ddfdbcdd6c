"""``python -m producer [setup] [flags]``: wiring only (settings → parts → run).

Exit codes come from ``auditstream.errors`` (2 config, 3 unavailable, 4 source setup, 5 bad
page); SIGTERM/SIGINT finish the batch in flight, store its bookmark and exit 0.
"""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from auditstream import log as logsetup
from auditstream import metrics
from auditstream.entry import run
from auditstream.errors import BrokerError
from auditstream.settings import load
from producer.bookmark import BookmarkStore
from producer.config import BookmarkSettings, ProducerSettings
from producer.loop import Loop
from producer.progress import BacklogBar, newest_event
from producer.publisher import Publisher, ensure
from producer.runtime import tune_gc
from producer.seal import Seal, SealStore
from producer.source import MySQLSource
from schemas.codec import for_settings

log = logging.getLogger("producer")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the producer (or ``setup``); return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["setup"]:
        return setup(args[1:])
    settings = load(ProducerSettings, args, prog="python -m producer", section="producer")
    logsetup.setup(json=settings.log_json)
    log.info("settings", extra={"ctx": settings.masked()})
    store = BookmarkStore(settings.bookmark())
    source = MySQLSource(
        settings.source(),
        read_buffer_size=settings.read_buffer_size,
        allow_self_audit=settings.allow_self_audit,
        read_timeout=settings.source_read_timeout,
    )
    kafka = settings.kafka()
    topics_ready = False
    message_limit = settings.max_message_bytes

    def create_topics(timeout: float) -> None:
        nonlocal topics_ready, message_limit
        message_limit = ensure(
            settings.admin(),
            [settings.topic, settings.control_topic],
            partitions=settings.partitions,
            max_message_bytes=settings.max_message_bytes,
            timeout=timeout,
        )
        topics_ready = True

    # As early as possible (subscribers may be waiting for the topics); a broker that is down
    # now is waited for in the loop's retried start instead.
    try:
        create_topics(5.0)
    except BrokerError as exc:
        if not exc.retriable:  # a refused login or certificate: waiting cannot mend it
            raise
        log.warning("cannot create the topics yet: %s", exc.message)

    def publisher_for(server_uuid: str) -> Publisher:
        if not topics_ready:
            create_topics(30.0)
        # Held to what the topics take (``ensure``'s trap: a broker refusal cannot keep the
        # refused event's place in the hash chain).
        limit = min(message_limit, int(kafka.get("message.max.bytes", message_limit)))
        return Publisher({**kafka, "message.max.bytes": limit}, server_uuid)

    codec = for_settings(settings.schema_registry_url)
    seal = Seal(
        SealStore(settings.bookmark()),
        codec,
        settings.control_topic,
        120.0,
        settings.signer(),
        settings.seal_every_events,
        settings.seal_every_seconds,
    )
    loop = Loop(source, publisher_for, store, codec, settings.options(), seal)

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s: finishing the batch in flight", signal.Signals(signum).name)
        loop.stop()

    if settings.metrics_port is not None:
        metrics.serve(settings.metrics_port, ready={"streaming": loop.healthy})
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    tune_gc()  # start-up is done: the page split's objects are what the collector sees now
    bar = None
    if sys.stderr.isatty() and not settings.log_json:
        bar = BacklogBar(lambda: loop.bookmark, lambda: newest_event(settings.source()))
        bar.start()
    try:
        loop.run()
    finally:
        if bar is not None:
            bar.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        source.close()
        store.close()
        seal.close()
        if loop.batcher is not None:
            loop.batcher.publisher.close()
    log.info("stopped", extra={"ctx": {"bookmark": loop.bookmark, "sent": _sent(loop)}})
    return 0


def setup(argv: Sequence[str]) -> int:
    """``python -m producer setup``: create the bookmark table (idempotent)."""
    settings = load(BookmarkSettings, argv, prog="python -m producer setup", section="producer")
    logsetup.setup(json=settings.log_json)
    store = BookmarkStore(settings.bookmark())
    store.setup()
    log.info("audit_config ready", extra={"ctx": {"database": store.database}})
    return 0


def _sent(loop: Loop) -> int:
    return loop.batcher.sent if loop.batcher is not None else 0


if __name__ == "__main__":
    sys.exit(run(main, sys.argv[1:]))
