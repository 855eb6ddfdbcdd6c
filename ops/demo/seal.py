"""``auditstream demo --seal``: the demo with sealed evidence (issue 16), step by step.

1. A signing key (``auditstream keys``) for the producer; its public half for ``verify``.
2. The OCI Object Storage test server (``tests.harness.oci_server``, run from the repository
   checkout) with bucket ``audit`` and a 30-day retention rule, created through the real SDK.
3. The producer signs a checkpoint every ``EVERY`` links (and at the end of its ``--once`` run).
4. ``consumer upload`` writes dumps and checkpoints to the bucket, refusing without the rule.
5. ``auditstream verify`` checks the archive and the dumps against the signed checkpoints.

Trap: the test server is a test fixture, not part of the installed package: this mode needs
the working directory to be the repository (``make demo SEAL=1`` does that).
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from auditstream.errors import ConfigError
from auditstream.ports import free_port
from auditstream.process import running

EVERY = 5000
BUCKET = "audit"
NAMESPACE = "testns"
RULE_DAYS = 30


@dataclass(frozen=True)
class Sealing:
    """What the sealed demo's children are given."""

    key: Path
    public: Path
    endpoint: str
    oci_config: Path

    def producer_args(self) -> list[str]:
        """Step 3."""
        return [f"--seal-every-events={EVERY}", f"--seal-key-file={self.key}"]

    def oci_args(self) -> list[str]:
        """The OCI settings every command that reaches the bucket takes."""
        return [f"--oci-config-file={self.oci_config}", f"--oci-endpoint={self.endpoint}"]

    def upload_args(self) -> list[str]:
        """Step 4: dumps and checkpoints to the bucket, a retention rule required."""
        return [
            f"--target=oci://{BUCKET}@{NAMESPACE}/dumps",
            f"--seal-target=oci://{BUCKET}@{NAMESPACE}/seals",
            f"--retention-min-days={RULE_DAYS}",
            *self.oci_args(),
        ]

    def verify_args(self) -> list[str]:
        """Step 5 (with ``--archive-dsn`` from the caller)."""
        return [
            f"--target=oci://{BUCKET}@{NAMESPACE}/dumps",
            f"--seal-target=oci://{BUCKET}@{NAMESPACE}/seals",
            f"--seal-public-key={self.public}",
            *self.oci_args(),
        ]


def start(stack: ExitStack, workdir: Path) -> Sealing:
    """Steps 1-2; the server stops with ``stack``."""
    from ops.keys import generate

    if not (Path.cwd() / "tests" / "harness" / "oci_server.py").is_file():
        raise ConfigError("demo --seal runs from the repository checkout (it needs tests/harness)")
    key = workdir / "seal.key"
    if not key.exists():
        generate(key)
    port = free_port()
    oci_dir = workdir / "oci"
    server = running(
        [sys.executable, "-m", "tests.harness.oci_server", f"--port={port}",
         f"--bucket={BUCKET}", f"--config-dir={oci_dir}"],
        workdir / "oci-server.log", port=port, what="OCI test server", stop_timeout=10,
    )  # fmt: skip
    stack.enter_context(server)
    sealing = Sealing(key, key.with_name("seal.key.pub"), f"http://127.0.0.1:{port}",
                      oci_dir / "config")  # fmt: skip
    _retention_rule(sealing)
    return sealing


def _retention_rule(sealing: Sealing) -> None:
    from oci.object_storage.models import CreateRetentionRuleDetails, Duration

    from consumer.upload import OciOptions, make_client

    client = make_client(OciOptions(config_file=sealing.oci_config, endpoint=sealing.endpoint))
    details = CreateRetentionRuleDetails(
        display_name="audit-evidence", duration=Duration(time_amount=RULE_DAYS, time_unit="DAYS")
    )
    client.create_retention_rule(NAMESPACE, BUCKET, details)
