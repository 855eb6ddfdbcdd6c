"""Run a shipped command that ``kill -9``s itself at an exact point: a crash where it hurts most.

``python -m tests.faults.crashpoint MODULE:CLASS.METHOD:N[:after] COMMAND [flags]`` runs
``auditstream COMMAND [flags]`` with ``CLASS.METHOD`` wrapped so that its N-th call sends
SIGKILL to the process, before the call (default) or right after it returned (``after``).
Nothing else changes: the real code runs up to that instant, as in a power cut.

Examples: ``producer.bookmark:BookmarkStore.store:3`` (acks received, bookmark not written);
``consumer.__main__:Consumer.commit:2`` (database committed, Kafka offsets not).

Trap: a C type (``confluent_kafka.Consumer``) cannot be patched; it is replaced, in the module
named, by a subclass with the wrapped method, so name the module that builds it.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from collections.abc import Callable
from typing import Any


def arm(spec: str) -> None:
    """Wrap the method ``spec`` names (see the module docstring)."""
    where, _, rest = spec.partition(":")
    attr, _, rest = rest.partition(".")
    method, _, rest = rest.partition(":")
    count, _, when = rest.partition(":")
    module = importlib.import_module(where)
    cls = getattr(module, attr)
    original: Callable[..., Any] = getattr(cls, method)
    calls = [0]

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        last = calls[0] == int(count)
        if last and when != "after":
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(*args, **kwargs)
        if last:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    try:
        setattr(cls, method, wrapper)
    except TypeError:
        setattr(module, attr, type(cls.__name__, (cls,), {method: wrapper}))


def main(argv: list[str]) -> int:
    """Arm the crash point, then run ``auditstream`` with the rest of ``argv``."""
    arm(argv[0])
    from ops.cli import main as cli

    return cli(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
