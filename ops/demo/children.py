"""The demo's children: ``auditstream`` commands, run through ``auditstream.process``."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import AbstractContextManager
from pathlib import Path

from auditstream.errors import AuditStreamError
from auditstream.process import log_tail as tail
from auditstream.process import run_logged, running


def child(
    name: str,
    workdir: Path,
    *args: str,
    env: dict[str, str] | None = None,
    port: int | None = None,
) -> AbstractContextManager[subprocess.Popen[bytes]]:
    """Run ``auditstream <args>`` in the background (until it serves on ``port``, if given).

    Stopped on leaving the ``with`` block: SIGTERM, then SIGKILL after 30 s.
    """
    log = workdir / f"{name}.log"
    return running(_cli(*args), log, port=port, what=name, env={**os.environ, **(env or {})})


def run_child(workdir: Path, env: dict[str, str], *args: str, timeout: float = 300.0) -> None:
    """Run ``auditstream <args>`` to completion; raise with its log tail when it fails."""
    log_path = (
        workdir
        / f"{args[0]}-{args[1] if len(args) > 1 and not args[1].startswith('-') else 'run'}.log"
    )
    if run_logged(_cli(*args), log_path, env={**os.environ, **env}, timeout=timeout) != 0:
        raise AuditStreamError(f"'auditstream {' '.join(args[:2])}' failed:\n{tail(log_path)}")


def _cli(*args: str) -> list[str]:
    """``auditstream <args>`` with this interpreter (the demo's children)."""
    return [sys.executable, "-m", "ops.cli", *args]
