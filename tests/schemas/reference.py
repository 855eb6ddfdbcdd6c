"""The reference the fast paths are held to: ``to_record`` + fastavro, and the test corpora."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import fastavro

from schemas import registry
from schemas.mapping import to_record

SAMPLE = (
    Path(__file__).resolve().parents[3] / "shared" / "samples" / "mysql-8.0.22-commercial-audit.log"
)
UUID = "3e11fa47-71ca-11e1-9e33-c80aa9429562"


def sample_events() -> list[str]:
    """Every event of the real sample, as the exact text the server wrote."""
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    return [line.rstrip().removesuffix(",") for line in lines if line.strip()]


def traffic_events(log_dir: Path, count: int, seed: int) -> list[str]:
    """``count`` events of the emulator's traffic generator, as written to its audit log."""
    from bench.corpus import write

    return [raw.decode() for raw in write(log_dir, count, seed=seed).raw_events()]


def fastavro_body(name: str, record: dict[str, Any]) -> bytes:
    """The body fastavro writes for ``record`` with the current schema ``name``."""
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, registry.current(name), record)
    return buf.getvalue()


def fastavro_record(name: str, body: bytes) -> Any:
    """What fastavro reads back from ``body`` (writer and reader: the current schema)."""
    schema = registry.current(name)
    return fastavro.schemaless_reader(io.BytesIO(body), schema, schema)


def reference_event(
    raw: str, event: Any, chain: str | None = None, chain_seq: int | None = None
) -> bytes | type[Exception]:
    """The reference body of an event, or the type of the error the reference raises."""
    try:
        return fastavro_body(
            registry.AUDIT_EVENT, to_record(UUID, raw, event, chain=chain, chain_seq=chain_seq)
        )
    except Exception as exc:
        return type(exc)
