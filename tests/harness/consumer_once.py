"""One real consumer, in this process, with ``--once``: what the topics hold goes into the archive.

For tests that need an archive filled by the real consumer (its command line, settings and
loop) before they check something else. ``consume_once`` does, in order:

1. ``consumer setup`` on the archive (creates or migrates the tables); exit 0.
2. ``consumer --once`` on the given topics and group, with the fast group timeouts of the test
   broker; exit 0 (everything on the topics archived, or dead-lettered).
3. Put back the SIGTERM/SIGINT handlers and collect garbage.

Trap (step 3): the consumer's signal handlers close over the member and its Kafka clients.
The previous handlers are put back (``consumer`` does so too; this also covers an exit before
it got there) and the garbage collected, so the clients go now, while the session's broker
still runs, not at some later collection.
"""

from __future__ import annotations

import gc
import signal
from collections.abc import Mapping

from auditstream.dsn import MySQLDsn


def consume_once(
    bootstrap: str, archive: MySQLDsn, names: Mapping[str, str], group: str, *extra: str
) -> None:
    """Steps 1-3. ``names`` maps ``events``, ``control`` and ``dlq`` to topics; ``extra``: flags."""
    from consumer import __main__ as consumer  # the consumer is optional in some checkouts

    dsn = archive.url(reveal=True)
    # Step 1
    code = consumer.main(["setup", "--archive-dsn", dsn])
    assert code == 0, f"consumer setup exited with {code}"  # (no assert rewriting here)
    # Step 2
    args = ["--archive-dsn", dsn, "--bootstrap-servers", bootstrap, "--topic", names["events"],
            "--control-topic", names["control"], "--dlq-topic", names["dlq"], "--group", group,
            "--kafka-config", "session.timeout.ms=2000",
            "--kafka-config", "heartbeat.interval.ms=500", *extra]  # fmt: skip
    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = consumer.main([*args, "--once"])
        assert code == 0, f"consumer --once exited with {code}"
    finally:
        # Step 3
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        gc.collect()
