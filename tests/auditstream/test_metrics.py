from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from auditstream import metrics


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.fixture
def state() -> dict[str, bool]:
    return {"broker": True, "database": True}


def test_metrics_health_and_readiness(state: dict[str, bool]) -> None:
    def broken() -> bool:
        raise RuntimeError("unreachable")

    server = metrics.serve(
        0,
        host="127.0.0.1",
        ready={"broker": lambda: state["broker"], "database": lambda: state["database"]},
    )
    try:
        port = server.server_port
        metrics.EVENTS_ACKED.labels(server="uuid-1").inc(3)
        status, body = get(port, "/metrics")
        assert status == 200
        assert 'auditstream_producer_events_acked_total{server="uuid-1"}' in body
        assert get(port, "/healthz") == (200, "ok\n")
        assert get(port, "/readyz") == (200, "ready\n")
        state["database"] = False
        assert get(port, "/readyz") == (503, "not ready: database\n")
    finally:
        server.shutdown()
        server.server_close()

    server = metrics.serve(0, host="127.0.0.1", ready={"source": broken})
    try:
        assert get(server.server_port, "/readyz") == (503, "not ready: source\n")
    finally:
        server.shutdown()
        server.server_close()
