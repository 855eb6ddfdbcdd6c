"""``auditstream verify``: wiring only (settings → readers → ``verify`` → report, exit code).

Exit codes: 0 every chain read is intact (and, with ``--seal-public-key``, every checkpoint is
validly signed by a trusted key and agrees with the stores); 1 tampering found (each finding on
stdout, first break first; also ``seal_mismatch``, ``bad_signature``, ``unknown_key``,
``checkpoint_gap``, ``malformed_checkpoint``, and with ``--require-seal`` ``unsealed``); 2 a
setting is wrong or a store has no chain columns; 3 a store (or the seal target) is unreachable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TextIO

from auditstream import log as logsetup
from auditstream.chain import ChainState, Link
from auditstream.settings import load
from ops.verify import tables, topic
from ops.verify.config import VerifySettings
from ops.verify.core import verify
from ops.verify.dumps import DumpReader, FileObjects, target_dir
from ops.verify.report import Finding, VerifyReport, cross_check
from ops.verify.scope import in_range, read_anchor, write_anchor
from ops.verify.sealing import seal_check
from schemas.codec import for_settings

log = logging.getLogger("auditstream.verify")
_SHOWN = 200  # findings printed per store (the first break is always the first printed)


def run(settings: VerifySettings, out: TextIO) -> int:
    """Verify every configured store; print one block per store; return the exit code."""
    only = set(settings.server_uuid)
    since, until = settings.range()
    anchors = read_anchor(settings.anchor) if settings.anchor else {}
    kafka, archive = settings.kafka(), settings.archive()
    codec = for_settings(settings.schema_registry_url)
    stores: list[tuple[str, Callable[[], Iterable[Link]], list[Finding]]] = []
    if kafka is not None:
        conf = kafka

        def from_topic() -> Iterable[Link]:
            return topic.read(
                conf, settings.topic, settings.control_topic, settings.dlq_topic, codec,
                settings.idle_timeout,
            )  # fmt: skip

        stores.append((f"topic {settings.topic}", from_topic, []))
    if archive is not None:
        dsn = archive

        def from_tables() -> Iterable[Link]:
            return tables.read(dsn, only or None, _dead_letters(settings), since=since, until=until)

        stores.append((f"archive {dsn}", from_tables, []))
    if settings.target is not None:
        reader = _dumps(settings, settings.target)
        stores.append(
            (f"dumps {settings.target}", lambda: reader.links(_gaps(settings)), reader.findings)
        )
    intact, last, reports = True, dict[str, ChainState](), dict[str, VerifyReport]()
    seal = seal_check(settings)  # sealed evidence (ops.verify.seals)
    for name, links, extra in stores:
        wanted: Iterable[Link] = (x for x in links() if not only or x.server_uuid in only)
        if seal is not None:
            wanted = seal.watch(wanted)
        # no range: the anchor covers the whole chain, so its end is checked too
        report = verify(in_range(wanted, since, until), anchors=anchors if until is None else {})
        report.findings[:0] = extra
        if seal is not None:  # dumps and a --until range need not hold the newest links
            seal.finish(report, tail=not name.startswith("dumps") and until is None)
        _print(name, report, out)
        if seal is not None:
            seal.print(out)
        intact &= report.intact
        reports[name] = report
        for uuid, summary in report.servers.items():
            if summary.last is not None and (uuid not in last or summary.last.seq > last[uuid].seq):
                last[uuid] = summary.last
    if len(reports) > 1:
        # a store rewritten with valid hashes still disagrees with the others
        crossed = VerifyReport(findings=cross_check(reports))
        _print("cross-check of the stores", crossed, out)
        intact &= crossed.intact
    if intact and settings.write_anchor is not None:
        write_anchor(settings.write_anchor, last)
        print(f"anchor written: {settings.write_anchor}", file=out)
    return 0 if intact else 1


def _dumps(settings: VerifySettings, target: str) -> DumpReader:
    """The dump reader of ``file://`` (here) or ``oci://`` (the consumer's ``OciStore``)."""
    if not target.startswith("oci://"):
        return DumpReader(FileObjects(target_dir(target)))
    from consumer.targets import TargetUrl
    from consumer.upload import OciStore

    url = TargetUrl.parse(target)
    return DumpReader(OciStore(url, settings.oci_options()), prefix=url.prefix)


def _dead_letters(settings: VerifySettings) -> Iterator[Link]:
    """The DLQ's links (the tables lack them by design), when a cluster is configured."""
    kafka = settings.kafka()
    if kafka is None or not settings.dlq_topic:
        return iter(())
    msgs = topic.messages(kafka, settings.dlq_topic, settings.idle_timeout, missing_ok=True)
    return topic.links(msgs, for_settings(settings.schema_registry_url), dead_lettered=True)


def _gaps(settings: VerifySettings) -> list[Link]:
    """Gaps for the dumps (which hold events only): from the archive, else the control topic."""
    archive, kafka = settings.archive(), settings.kafka()
    if archive is not None:
        return tables.read_gaps(archive)
    if kafka is not None:
        codec = for_settings(settings.schema_registry_url)
        msgs = topic.messages(kafka, settings.control_topic, settings.idle_timeout, missing_ok=True)
        return list(topic.links(msgs, codec))
    return []


def _print(name: str, report: VerifyReport, out: TextIO) -> None:
    verdict = "intact" if report.intact else "NOT INTACT"
    print(f"{name}: {verdict}", file=out)
    for uuid, s in sorted(report.servers.items()):
        first, last = s.first, s.last
        span = f"seq {first.seq}..{last.seq} last={last.hash}" if first and last else "no links"
        anchored = "from genesis" if s.anchored_start else "start trusted"
        print(
            f"  server {uuid}: {s.links} links ({span}, {anchored}), {s.resent} re-sent, "
            f"{s.dead_lettered} dead-lettered",
            file=out,
        )
    for finding in report.findings[:_SHOWN]:
        print(f"  {'TAMPER' if finding.tamper else 'note'} {finding}", file=out)
    if len(report.findings) > _SHOWN:
        print(f"  ... and {len(report.findings) - _SHOWN} more findings", file=out)


def main(argv: Sequence[str]) -> int:
    """Entry point of ``auditstream verify``."""
    import sys

    settings = load(VerifySettings, argv, prog="auditstream verify", section="verify")
    logsetup.setup(json=settings.log_json)
    return run(settings, sys.stdout)
