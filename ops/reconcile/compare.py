"""The verdict: read every store given into one index, then explain every key once.

Steps (``reconcile``):

1. Read the source (when given): it fixes the server and the end of the range.
2. Read the topics (events, gaps, dead letters), the archive tables and ``audit_control``, and
   the dumps at the target, each into the index.
3. Scan the index in key order. The **reference** is the source, else the topic, else the
   archive. Per key, against the reference:

   - ``missing``: the reference has it, a store does not; unless a gap control event names it
     (``gap``: accounted for) or, for the archive, a dead letter does (``dead_lettered``).
   - ``duplicated``: more than one copy in the archive: two tables, two dumps, or a table and
     the dump of another table. (Several copies in the topic are a producer re-send, allowed
     by the producer guarantee: ``resent``, counted, not a failure.)
   - ``altered``: a copy's raw text differs from the reference (or two copies differ).
   - ``unexpected``: a store has a key the reference does not.

   The archive is ``audit_data`` + the rotated tables + the dumps of tables no longer there:
   a table and its own dump are one copy, and must hold the same keys when both exist.
4. Add what is not keyed: objects that differ from their manifest, source elements without a
   position that no ``invalid_event`` gap accounts for, dead letters that cannot be decoded.

Findings are kept up to ``limit`` per kind and store (the counts are complete): a range with a
million missing events still reports in bounded memory.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auditstream.dsn import MySQLDsn
from consumer.targets import ObjectStore, TargetUrl
from ops.reconcile.dumps import DumpsResult, read_dumps
from ops.reconcile.index import KeyIndex, Row
from ops.reconcile.keys import KeyRange
from ops.reconcile.source import SourceResult, read_source
from ops.reconcile.tables import TablesResult, read_tables
from ops.reconcile.topic import (
    MarkBuffer,
    TopicResult,
    read_dead_letters,
    read_events,
    read_gaps,
)
from schemas.codec import Codec

#: Finding kinds that mean the stores disagree (exit code 1).
FAILURES = frozenset(
    {"missing", "duplicated", "altered", "unexpected", "object_mismatch", "unaccounted"}
)


@dataclass(frozen=True)
class Finding:
    """One key (or object) a store disagrees about.

    Attributes:
        kind: ``missing``, ``duplicated``, ``altered``, ``unexpected``, ``object_mismatch``,
            ``unaccounted`` (failures); ``gap``, ``dead_lettered``, ``resent``, ``poison``
            (reported, accounted for).
        store: ``source``, ``topic``, ``table``, ``dump`` or ``archive``.
        server_uuid: the server ("-" when not keyed).
        position: ``ts#id`` ("-" when not keyed).
        where: where the copy (or the reference copy) was read.
        detail: what is wrong, in words.
    """

    kind: str
    store: str
    server_uuid: str
    position: str
    where: str = ""
    detail: str = ""

    @property
    def failure(self) -> bool:
        """True when this finding means the stores disagree."""
        return self.kind in FAILURES

    def __str__(self) -> str:
        return (
            f"{self.kind}: {self.store} server={self.server_uuid} key={self.position}"
            + (f" at {self.where}" if self.where else "")
            + (f": {self.detail}" if self.detail else "")
        )


@dataclass(frozen=True)
class Stores:
    """The stores to compare; leave out what you do not have (at least two are needed).

    Attributes:
        source: the audited server (an ``AUDIT_ADMIN`` account).
        kafka: librdkafka settings (``bootstrap.servers`` and security keys) for the topics.
        topic, control_topic, dlq_topic: the topic names (control/DLQ None to skip them).
        archive: the archive database.
        dumps: the object store and target the dumps were uploaded to.
        codec: the framing of the topics (None: recognised from the first byte).
        work_dir: where the index file goes (default: the temp directory).
        idle_timeout: seconds without a message before a topic read gives up.
    """

    source: MySQLDsn | None = None
    kafka: Mapping[str, Any] | None = None
    topic: str = "mysql.audit.events"
    control_topic: str | None = "mysql.audit.control"
    dlq_topic: str | None = "mysql.audit.dlq"
    archive: MySQLDsn | None = None
    dumps: tuple[ObjectStore, TargetUrl] | None = None
    codec: Codec | None = None
    work_dir: Path | None = None
    idle_timeout: float = 30.0

    def names(self) -> list[str]:
        """The stores given, reference first."""
        given = [
            ("source", self.source),
            ("topic", self.kafka),
            ("table", self.archive),
            ("dump", self.dumps),
        ]
        return [name for name, value in given if value is not None]


@dataclass
class Report:
    """The outcome: counts per (kind, store), findings (bounded), what each store held."""

    range: KeyRange
    reference: str
    keys: dict[str, int] = field(default_factory=dict)
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    limit: int = 100
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when every store agrees (gaps, dead letters and re-sends are accounted for)."""
        return not any(kind in FAILURES for kind, _ in self.counts)

    def of(self, kind: str, store: str | None = None) -> list[Finding]:
        """The findings kept of one kind (and store)."""
        return [f for f in self.findings if f.kind == kind and store in (None, f.store)]

    def add(self, finding: Finding) -> None:
        """Count ``finding``; keep it while fewer than ``limit`` of its kind and store are."""
        self.counts[finding.kind, finding.store] += 1
        if self.counts[finding.kind, finding.store] <= self.limit:
            self.findings.append(finding)


def reconcile(stores: Stores, keys: KeyRange, *, limit: int = 100) -> Report:
    """Compare the stores over ``keys`` (Steps 1-4); see the module docstring.

    Raises:
        ConfigError: fewer than two stores, or the range names another server than the source.
        AuditStreamError: a store cannot be read (source, broker, archive, object store).
    """
    from auditstream.errors import ConfigError

    names = stores.names()
    if len(names) < 2:
        raise ConfigError("reconcile needs at least two stores", given=names or None)
    with KeyIndex(stores.work_dir) as index:
        # Step 1
        src: SourceResult | None = None
        if stores.source is not None:
            src = read_source(stores.source, index, keys)
            keys = src.range
        report = Report(keys, names[0], limit=limit)
        # Step 2
        topic = _read_topics(stores, index, keys) if stores.kafka is not None else TopicResult()
        tables = read_tables(stores.archive, index, keys) if stores.archive else None
        dumps = read_dumps(*stores.dumps, index, keys) if stores.dumps else None
        # Step 3
        judge = _Judge(report, names, tables, dumps)
        for row in index.rows():
            judge.row(row)
        for name in names:
            report.keys[name] = index.count(name)
        # Step 4
        _unkeyed(report, src, topic, tables, dumps)
    return report


def _read_topics(stores: Stores, index: KeyIndex, keys: KeyRange) -> TopicResult:
    """The three topics at once: events into the index here, marks buffered in workers."""
    assert stores.kafka is not None  # noqa: S101 - checked by the caller
    conf, codec, idle = stores.kafka, stores.codec, stores.idle_timeout
    gaps, letters = TopicResult(), TopicResult()
    buffer = MarkBuffer()
    with ThreadPoolExecutor(2, thread_name_prefix="reconcile") as pool:
        jobs = []
        if stores.control_topic:
            jobs.append(
                pool.submit(read_gaps, conf, stores.control_topic, buffer, keys, codec, idle, gaps)
            )
        if stores.dlq_topic:
            jobs.append(
                pool.submit(
                    read_dead_letters, conf, stores.dlq_topic, buffer, keys, codec, idle, letters
                )
            )
        result = read_events(conf, stores.topic, index, keys, codec, idle)
        for job in jobs:
            job.result()
    buffer.apply(index)
    result.gaps, result.gap_sha256 = gaps.gaps, gaps.gap_sha256
    result.dead_letters, result.poison = letters.dead_letters, letters.poison
    return result


class _Judge:
    def __init__(
        self,
        report: Report,
        names: list[str],
        tables: TablesResult | None,
        dumps: DumpsResult | None,
    ) -> None:
        self.r = report
        self.names = names
        self.ref = names[0] if names[0] in ("source", "topic") else "archive"
        self.db_tables = set(tables.rows) if tables else set()
        self.dumped = set(dumps.tables) if dumps else set()
        self.archive = [n for n in names if n in ("table", "dump")]

    def row(self, row: Row) -> None:
        s = row.stores
        archived = any(s[n].n for n in self.archive)
        if self.ref == "archive":
            have = archived
            ref_digest = s["table"].digest if s["table"].n else s["dump"].digest
        else:
            have = s[self.ref].n > 0
            ref_digest = s[self.ref].digest
        if not have:
            for name in self.names[1:]:
                if s[name].n and not (self.ref == "archive" and name in self.archive):
                    self._add("unexpected", name, row, s[name].where, f"not in the {self.ref}")
            return
        if "topic" in self.names and self.ref != "topic":
            self._topic(row, ref_digest)
        elif "topic" in self.names and s["topic"].n > 1 and not s["topic"].altered:
            self._add("resent", "topic", row, s["topic"].where2, f"{s['topic'].n} copies")
        if self.archive:
            self._archive(row, ref_digest, archived)

    def _topic(self, row: Row, ref: bytes | None) -> None:
        t = row.stores["topic"]
        if not t.n:
            self._absent(row, "topic", dlq_counts=False)
            return
        if t.altered:
            self._add("altered", "topic", row, t.where, f"another copy at {t.where2} differs")
        elif t.digest != ref:
            self._add("altered", "topic", row, t.where, f"raw text differs from the {self.ref}")
        elif t.n > 1:
            self._add("resent", "topic", row, t.where2, f"{t.n} copies")

    def _archive(self, row: Row, ref: bytes | None, archived: bool) -> None:
        s = row.stores
        tbl, dmp = s["table"], s["dump"]
        if not archived:
            self._absent(row, "archive", dlq_counts=True)
            return
        for name, seen in (("table", tbl), ("dump", dmp)):
            if seen.n > 1:
                detail = f"{seen.n} copies, another at {seen.where2}"
                self._add("duplicated", name, row, seen.where, detail)
            if seen.n and (seen.altered or seen.digest != ref):
                self._add("altered", name, row, seen.where, f"raw text differs from the {self.ref}")
        if tbl.n and dmp.n and tbl.name != dmp.name:
            detail = f"also in the dump of {dmp.name} at {dmp.where}"
            self._add("duplicated", "archive", row, tbl.where, detail)
        if tbl.n and not dmp.n and tbl.name in self.dumped:
            self._add("missing", "dump", row, tbl.where, f"the dump of {tbl.name} lacks it")
        if dmp.n and not tbl.n and dmp.name in self.db_tables:
            self._add("missing", "table", row, dmp.where, f"table {dmp.name} lacks it")

    def _absent(self, row: Row, store: str, *, dlq_counts: bool) -> None:
        if row.gap is not None:
            self._add("gap", store, row, row.gap, "accounted for by a gap control event")
        elif dlq_counts and row.dlq is not None:
            self._add("dead_lettered", store, row, row.dlq, "refused by the consumer")
        else:
            self._add("missing", store, row, "", f"the {self.ref} has it")

    def _add(self, kind: str, store: str, row: Row, where: str | None, detail: str) -> None:
        self.r.add(Finding(kind, store, row.server_uuid, row.position, where or "", detail))


def _unkeyed(
    report: Report,
    src: SourceResult | None,
    topic: TopicResult,
    tables: TablesResult | None,
    dumps: DumpsResult | None,
) -> None:
    gap_sha = topic.gap_sha256 | (tables.gaps.gap_sha256 if tables else set())
    if src is not None:
        for sha, error in src.unidentified.items():
            kind = "gap" if sha in gap_sha else "unaccounted"
            detail = f"element without a position ({error}), sha256={sha}"
            report.add(Finding(kind, "source", src.server_uuid, "-", "", detail))
        if src.warnings:
            report.notes.append(f"the source skipped {len(src.warnings)} event(s) with a warning")
    for where in topic.poison:
        report.add(Finding("poison", "topic", "-", "-", where, "a dead letter naming no event"))
    for problem in dumps.problems if dumps else ():
        report.add(
            Finding("object_mismatch", "dump", "-", "-", f"object {problem.where}", problem.what)
        )
    gaps = topic.gaps + (tables.gaps.gaps if tables else 0)
    report.notes.append(
        f"topic: {topic.messages} event messages, {topic.dead_letters} dead letters; {gaps} gaps"
    )
