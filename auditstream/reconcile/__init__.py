"""``auditstream reconcile``: prove, for a server and a bookmark range, that nothing was lost.

Every store is read into one on-disk index keyed by ``(server_uuid, timestamp, id)``, holding
per store a SHA-256 of the event's raw text and how many copies were seen; then one ordered
scan of the index explains every key (memory stays bounded however long the range is).

- :mod:`auditstream.reconcile.keys`: the key range and the event digest.
- :mod:`auditstream.reconcile.index`: the on-disk index (SQLite, one row per key).
- :mod:`auditstream.reconcile.source`: the source through ``audit_log_read`` (producer.source).
- :mod:`auditstream.reconcile.topic`: the event, control and dead-letter topics (verify.topic).
- :mod:`auditstream.reconcile.tables`: ``audit_data``, the rotated tables and ``audit_control``.
- :mod:`auditstream.reconcile.dumps`: uploaded dumps, through their manifests, on any target.
- :mod:`auditstream.reconcile.compare`: the verdict per key and the report.
- :mod:`auditstream.reconcile.command`: the command line (``main``).
"""

from __future__ import annotations

from auditstream.reconcile.compare import Finding, Report, Stores, reconcile
from auditstream.reconcile.keys import KeyRange

__all__ = ["Finding", "KeyRange", "Report", "Stores", "reconcile"]
