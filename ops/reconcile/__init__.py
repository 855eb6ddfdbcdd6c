"""``auditstream reconcile``: prove, for a server and a bookmark range, that nothing was lost.

Every store is read into one on-disk index keyed by ``(server_uuid, timestamp, id)``, holding
per store a SHA-256 of the event's raw text and how many copies were seen; then one ordered
scan of the index explains every key (memory stays bounded however long the range is).

- :mod:`ops.reconcile.keys`: the key range and the event digest.
- :mod:`ops.reconcile.index`: the on-disk index (SQLite, one row per key).
- :mod:`ops.reconcile.source`: the source through ``audit_log_read`` (producer.source).
- :mod:`ops.reconcile.topic`: the event, control and dead-letter topics (verify.topic).
- :mod:`ops.reconcile.tables`: ``audit_data``, the rotated tables and ``audit_control``.
- :mod:`ops.reconcile.dumps`: uploaded dumps, through their manifests, on any target.
- :mod:`ops.reconcile.compare`: the verdict per key and the report.
- :mod:`ops.reconcile.command`: the command line (``main``).
"""

from __future__ import annotations

from ops.reconcile.compare import Finding, Report, Stores, reconcile
from ops.reconcile.keys import KeyRange

__all__ = ["Finding", "KeyRange", "Report", "Stores", "reconcile"]
