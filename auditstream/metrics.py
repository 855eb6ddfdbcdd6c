"""Prometheus metrics and the health endpoints every long-running service serves.

``serve(port, ready=...)`` starts one HTTP server in a daemon thread:

- ``/metrics``: the Prometheus exposition of the default registry.
- ``/healthz``: 200 while the process runs (liveness).
- ``/readyz``: 200 when every readiness check passes (source, broker, database reachable),
  503 with the failing checks' names otherwise. Checks must be cheap and must not raise.

Metric names are a contract for dashboards; labels never carry secrets or unbounded values
beyond ``server`` (one per audited server) and ``partition``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import Counter, Gauge, Histogram, make_wsgi_app

# Producer
EVENTS_READ = Counter(
    "auditstream_producer_events_read", "Events read from audit_log_read", ["server"]
)
EVENTS_PUBLISHED = Counter(
    "auditstream_producer_events_published", "Events handed to Kafka", ["server"]
)
EVENTS_ACKED = Counter(
    "auditstream_producer_events_acked", "Events acknowledged by Kafka", ["server"]
)
PAGES = Counter(
    "auditstream_producer_pages", "audit_log_read calls that returned a page", ["server"]
)
PAGE_FILL = Histogram(
    "auditstream_producer_page_fill_ratio",
    "Page size / read buffer size",
    ["server"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0),
)
GAPS = Counter(
    "auditstream_producer_gap_events", "Gap control events published", ["server", "reason"]
)
DELIVERY_ERRORS = Counter(
    "auditstream_producer_delivery_errors", "Messages Kafka did not ack", ["server"]
)
BOOKMARK_LAG = Gauge(
    "auditstream_producer_bookmark_lag_seconds",
    "Newest audit event time minus the stored bookmark's time",
    ["server"],
)
CHECKPOINT_TIME = Gauge(
    "auditstream_producer_checkpoint_timestamp_seconds",
    "When the last signed checkpoint was stored (alert when sealing stops)",
    ["server"],
)
BOOKMARK_TIME = Gauge(
    "auditstream_producer_bookmark_timestamp_seconds",
    "The stored bookmark's event time",
    ["server"],
)

# Consumer
ROWS_INSERTED = Counter(
    "auditstream_consumer_rows_inserted", "Rows written to audit_data", ["topic"]
)
DUPLICATES_SKIPPED = Counter(
    "auditstream_consumer_duplicates_skipped",
    "Re-sent events skipped (already archived)",
    ["topic"],
)
BATCH_SECONDS = Histogram(
    "auditstream_consumer_batch_seconds",
    "Time to write one batch and its offsets in one transaction",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
DEAD_LETTERS = Counter(
    "auditstream_consumer_dead_letters", "Records sent to the DLQ", ["topic", "error"]
)
DEAD_LETTER_REFERENCES = Counter(
    "auditstream_consumer_dead_letter_references",
    "Dead letters too large for the DLQ topic, written as a reference to the original",
    ["topic"],
)
CONSUMER_LAG = Gauge(
    "auditstream_consumer_lag_messages",
    "Messages not yet archived: fetch high-water mark minus the archive's committed offset",
    ["topic", "partition"],
)
CONSUMER_EVENT_LAG = Gauge(
    "auditstream_consumer_event_lag_seconds",
    "Age (event time) of the newest event archived from the partition",
    ["topic", "partition"],
)

SOURCE_READ_TIMEOUTS = Counter(
    "auditstream_producer_source_read_timeouts",
    "audit_log_read calls abandoned: no byte from the source within --source-read-timeout",
)

# Rotation and upload
ROTATIONS = Counter("auditstream_rotations", "Tables rotated")
DUMPS = Counter("auditstream_dumps", "Rotated tables dumped", ["method"])
UPLOADS = Counter("auditstream_uploads", "Rotated tables uploaded and verified")
STEP_FAILURES = Counter("auditstream_rotation_step_failures", "Failed ledger steps", ["step"])

ReadinessCheck = Callable[[], bool]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Scrapes are not worth a log line each."""


def serve(
    port: int,
    *,
    ready: Mapping[str, ReadinessCheck] | None = None,
    host: str = "0.0.0.0",  # noqa: S104
) -> WSGIServer:
    """Serve ``/metrics``, ``/healthz`` and ``/readyz`` on ``host:port`` in a daemon thread.

    Returns the server; call ``shutdown()`` to stop it (tests do). ``port=0`` picks a free port
    (read it from ``server.server_port``).
    """
    checks = dict(ready or {})
    metrics_app = make_wsgi_app()

    def app(environ: dict[str, object], start_response: Callable[..., object]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        if path == "/readyz":
            failing = [name for name, check in checks.items() if not _safe(check)]
            if failing:
                start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
                return [("not ready: " + ", ".join(failing) + "\n").encode()]
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ready\n"]
        result: Iterable[bytes] = metrics_app(environ, start_response)
        return result

    server = make_server(host, port, app, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


def _safe(check: ReadinessCheck) -> bool:
    try:
        return bool(check())
    except Exception:  # noqa: BLE001 - a failing check means "not ready", never a crash
        return False
