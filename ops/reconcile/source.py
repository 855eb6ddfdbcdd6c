"""The source's side: what ``audit_log_read`` returns for the range, read like the producer reads.

The session, the flavors and the page parser are the producer's (``producer.source``,
``producer.page``): reconcile sees exactly what the producer saw, not a re-implementation.

Steps (``read_source``):

1. Connect; the server's ``server_uuid`` is the key of every event; fix the end of the range
   to ``audit_log_read_bookmark()`` now when none was given (events written while reconcile
   runs are left out of every store alike).
2. Open a sequence at the first event at or after the range's start (``{"start": ...}``) and
   read pages until one ends with ``null`` or an event lies past the end.
3. Each identified event goes into the index; an element without a position (no timestamp or
   id) cannot be keyed and is kept by SHA-256, to be matched with an ``invalid_event`` gap.
4. ``SHOW WARNINGS`` lines (events the server skipped as too large) are counted: the source
   itself does not return those events, the producer's ``oversized`` gaps stand for them.

Trap: the source's own log may have rotated away or pruned the start of the range; then the
other stores hold keys the source no longer has, reported as ``unexpected``: read the range the
source still holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from auditstream.dsn import MySQLDsn
from auditstream.errors import ConfigError
from auditstream.position import Position
from ops.reconcile.index import KeyIndex
from ops.reconcile.keys import KeyRange, digest
from producer.source import MySQLSource

EARLIEST = "1970-01-01 00:00:00"
READ_BUFFER = 4 * 1024 * 1024


@dataclass
class SourceResult:
    """What reading the source found besides keyed events."""

    server_uuid: str = ""
    range: KeyRange = field(default_factory=KeyRange)
    events: int = 0
    unidentified: dict[str, str] = field(default_factory=dict)  # sha256 hex -> error
    warnings: list[str] = field(default_factory=list)


def read_source(dsn: MySQLDsn, index: KeyIndex, keys: KeyRange) -> SourceResult:
    """Read the range from the source into ``index`` (Steps 1-4).

    Raises:
        ConfigError: the range names another server than the source's.
        SourceError: the source failed (unavailable, not JSON, missing privilege, bad page).
    """
    source = MySQLSource(dsn, read_buffer_size=READ_BUFFER, allow_self_audit=True)
    try:
        # Step 1
        source.connect()
        uuid = source.server_uuid
        if keys.server_uuid is not None and keys.server_uuid != uuid:
            raise ConfigError(
                "the source is another server than --server-uuid",
                source=uuid,
                server_uuid=keys.server_uuid,
            )
        end = keys.end
        if end is None:
            latest = source.latest()
            end = latest if latest is not None else Position(EARLIEST, 0)
        result = SourceResult(uuid, KeyRange(uuid, keys.start, end))
        # Step 2
        page = source.open_at(keys.start[0] if keys.start else EARLIEST)
        while True:
            # Step 4
            result.warnings += page.warnings
            done = False
            for event in page.events:
                # Step 3
                if event.pos is None:
                    result.unidentified[event.sha256()] = event.error or "unidentified"
                    continue
                ts, id_ = event.pos
                if result.range.past(ts, id_):
                    done = True
                    break
                if result.range.holds(uuid, ts, id_):
                    index.add("source", uuid, ts, id_, digest(event.raw), f"source {ts}#{id_}", "")
                    result.events += 1
            if done or page.exhausted:
                break
            page = source.next()
    finally:
        source.close()
    return result
