"""``auditstream reconcile [flags]``: wiring (settings → stores → ``reconcile`` → report).

Exit codes: 0 every store agrees (gaps, dead letters and re-sends are listed, accounted for);
1 a store disagrees (missing, duplicated, altered, unexpected, an object unlike its manifest);
2 invalid settings; 3+ a store could not be read (``auditstream.errors``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from auditstream import log as logsetup
from auditstream.settings import load
from consumer.targets import FileStore, ObjectStore, TargetUrl
from ops.reconcile.compare import Report, Stores, reconcile
from ops.reconcile.config import ReconcileSettings
from schemas.codec import for_settings

log = logging.getLogger("auditstream.reconcile")


def main(argv: Sequence[str]) -> int:
    """Run ``auditstream reconcile``; return the exit code."""
    settings = load(ReconcileSettings, argv, prog="auditstream reconcile", section="reconcile")
    logsetup.setup(json=settings.log_json)
    log.info("settings", extra={"ctx": settings.masked()})
    report = reconcile(stores(settings), settings.range(), limit=settings.limit)
    print(to_json(report) if settings.json_output else to_text(report))
    return 0 if report.clean else 1


def stores(settings: ReconcileSettings) -> Stores:
    """The stores the settings name."""
    dumps: tuple[ObjectStore, TargetUrl] | None = None
    if settings.target is not None:
        target = TargetUrl.parse(settings.target)
        dumps = (object_store(settings, target), target)
    return Stores(
        source=settings.source(),
        kafka=settings.kafka(),
        topic=settings.topic,
        control_topic=settings.control_topic,
        dlq_topic=settings.dlq_topic,
        archive=settings.archive(),
        dumps=dumps,
        codec=for_settings(settings.schema_registry_url),
        work_dir=settings.work_dir,
        idle_timeout=settings.idle_timeout,
    )


def object_store(settings: ReconcileSettings, target: TargetUrl) -> ObjectStore:
    """A ``FileStore`` for ``file://``, an ``OciStore`` for ``oci://`` (SDK loaded only then)."""
    if target.scheme == "file":
        assert target.path is not None  # noqa: S101 - TargetUrl.parse sets it for file://
        return FileStore(target.path)
    from consumer.upload import OciStore

    return OciStore(target, settings.oci_options())


def to_text(report: Report) -> str:
    """The report for a terminal: the range, keys per store, findings, counts, the verdict."""
    lines = [f"reconcile {report.range} (reference: {report.reference})"]
    lines += [f"  {store}: {n} keys" for store, n in report.keys.items()]
    lines += [f"  {note}" for note in report.notes]
    lines += [str(f) for f in report.findings]
    for (kind, store), n in sorted(report.counts.items()):
        lines.append(f"  {kind} in {store}: {n}")
    lines.append("OK: every store agrees" if report.clean else "MISMATCH: the stores disagree")
    return "\n".join(lines)


def to_json(report: Report) -> str:
    """The report as one JSON object (for scripts and monitoring)."""
    out: dict[str, Any] = {
        "clean": report.clean,
        "range": str(report.range),
        "reference": report.reference,
        "keys": report.keys,
        "counts": {f"{kind}/{store}": n for (kind, store), n in sorted(report.counts.items())},
        "findings": [f.__dict__ for f in report.findings],
        "notes": report.notes,
    }
    return json.dumps(out, sort_keys=True)
