"""``auditstream verify``: recompute the per-server hash chains over a store (issue 10).

- :mod:`ops.verify.core`: the pure check, ``verify(links, start) -> VerifyReport``.
- :mod:`ops.verify.report`: findings, per-server summaries, the verdict.
- :mod:`ops.verify.topic`: links from the event, control and dead-letter topics.
- :mod:`ops.verify.tables`: ``audit_data``, rotated tables, ``audit_control``.
- :mod:`ops.verify.dumps`: links from uploaded dumps (``manifest.json`` + objects).
- :mod:`ops.verify.command`: the command line (``main``).
"""

from __future__ import annotations

from collections.abc import Sequence

from ops.verify.core import verify
from ops.verify.report import Finding, NotChained, ServerSummary, VerifyReport

__all__ = ["Finding", "NotChained", "ServerSummary", "VerifyReport", "main", "verify"]


def main(argv: Sequence[str]) -> int:
    """``auditstream verify [flags]``: exit code 0 only when every chain read is intact."""
    from ops.verify.command import main as run

    return run(argv)
