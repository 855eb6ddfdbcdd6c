"""Calling an entry point: the pipeline's errors become exit codes and one clear line.

Every ``python -m <package>`` and the ``auditstream`` console script (``ops.cli``) go through
``run``, so an ``AuditStreamError`` never reaches the user as a traceback. It lives in the kernel
because the services' ``__main__`` modules use it too; the dispatcher over all commands sits on
top, in ``ops.cli``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

from auditstream.errors import AuditStreamError

log = logging.getLogger("auditstream")


def run(entry: Callable[[Sequence[str]], int], argv: Sequence[str]) -> int:
    """Call an entry point, mapping the pipeline's errors to exit codes and one clear line."""
    try:
        return entry(argv)
    except AuditStreamError as exc:
        log.debug("failed", exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
