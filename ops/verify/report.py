"""What ``verify`` says: findings with their location, per-server summaries, the verdict.

``cross_check`` compares stores with each other. A chain proves that nothing inside it changed,
but someone with write access to one store can recompute every hash after the rows they changed;
the other stores (the topic, the dumps) then hold different values for the same link numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from auditstream.chain import ChainState
from auditstream.errors import AuditStreamError


class NotChained(AuditStreamError):
    """The store has no chain values to verify (a column or field is missing)."""

    exit_code = 2


#: Findings that mean the store does not hold the chain the producer wrote.
TAMPER_KINDS = frozenset(
    {
        "altered",
        "deleted",
        "inserted",
        "swapped",
        "unchained",
        "anchor_mismatch",
        "truncated",
        "object_mismatch",
        "diverged",
        # sealed evidence (ops.verify.seals)
        "seal_mismatch",
        "bad_signature",
        "unknown_key",
        "checkpoint_gap",
        "malformed_checkpoint",
        "unsealed",
    }
)

#: Every link whose number is a multiple of this is remembered for ``cross_check``.
CHECKPOINT_EVERY = 1000


@dataclass(frozen=True)
class Finding:
    """One thing ``verify`` reports, with its location.

    Attributes:
        kind: see the module docstring; also ``unchained`` (a link without a stored hash),
            ``anchor_mismatch``/``truncated`` (the store disagrees with, or ends before, an
            anchor) and ``object_mismatch`` (a dump object differs from its manifest).
        server_uuid: the server whose chain breaks.
        seq: the stored link number, when known.
        position: the link's bookmark (``ts#id``) or gap description.
        where: the store reader's location (topic/partition/offset, table/row, object/line).
        detail: what was expected, in words.
    """

    kind: str
    server_uuid: str
    seq: int | None
    position: str
    where: str
    detail: str = ""

    @property
    def tamper(self) -> bool:
        """True when this finding means the data is not intact."""
        return self.kind in TAMPER_KINDS

    def __str__(self) -> str:
        seq = f" seq={self.seq}" if self.seq is not None else ""
        return (
            f"{self.kind}: server={self.server_uuid}{seq} bookmark={self.position} "
            f"at {self.where}: {self.detail}"
        )


@dataclass
class ServerSummary:
    """What was verified for one server."""

    links: int = 0
    resent: int = 0
    dead_lettered: int = 0
    anchored_start: bool = False
    first: ChainState | None = None
    last: ChainState | None = None
    #: chain value of every verified link numbered a multiple of CHECKPOINT_EVERY, and the last
    checkpoints: dict[int, str] = field(default_factory=dict)


@dataclass
class VerifyReport:
    """The outcome: per-server summaries and every finding in the order found."""

    servers: dict[str, ServerSummary] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        """No finding means tampering (re-sends and dead letters are fine)."""
        return not any(f.tamper for f in self.findings)

    @property
    def first_break(self) -> Finding | None:
        """The first finding that means tampering, or None."""
        return next((f for f in self.findings if f.tamper), None)


def cross_check(reports: Mapping[str, VerifyReport]) -> list[Finding]:
    """Links with the same number in two stores must have the same hash (``diverged`` if not).

    Compared: the checkpoints both stores verified (every ``CHECKPOINT_EVERY``-th link and each
    store's last one), so a consistent rewrite of one store is caught at the first checkpoint
    after the rewritten rows that the other store also holds.
    """
    findings = []
    names = list(reports)
    for i, one in enumerate(names):
        for other in names[i + 1 :]:
            for uuid, mine in reports[one].servers.items():
                theirs = reports[other].servers.get(uuid)
                if theirs is None:
                    continue
                a, b = mine.checkpoints, theirs.checkpoints
                seq = next((n for n in sorted(a.keys() & b.keys()) if a[n] != b[n]), None)
                if seq is not None:
                    detail = (
                        f"link {seq} is {a[seq]} in one, {b[seq]} in the other: one was rewritten"
                    )
                    findings.append(Finding("diverged", uuid, seq, "-", f"{one} / {other}", detail))
    return findings
