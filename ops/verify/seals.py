"""Sealed evidence in ``verify``: signed checkpoints against the chains the stores hold.

A chain proves that nothing inside it changed; someone who controls the archive, the topic and
the dump bucket can still recompute all of it. Checkpoints are signed by a key only the
producer holds, and copied to a retention-protected bucket (``--seal-target``), so for each
store verified, per server:

1. Gather the checkpoints: the checkpoint links the store holds, and the objects under the
   seal target (read once, before the stores).
2. Check each signature with the trusted public keys (``--seal-public-key``, repeatable: old
   and new keys during a rotation): ``bad_signature``, or ``unknown_key`` for a key id not
   given.
3. For each valid one, the store's link ``signed_seq`` must have the ``signed_chain`` it
   signed: if not, ``seal_mismatch`` (the chain was rewritten). A store that should hold the
   newest links (the archive, the topic; not the dumps, nor a ``--until`` range) and ends
   before a signed link, or holds no link of a server the seal target has checkpoints of, is
   ``truncated``.
4. Numbers missing between the checkpoints of a server: ``checkpoint_gap``.
5. Report the last valid checkpoint, the events after it not yet sealed, and each ``skip``
   (``bookmark set``) as a note. With ``require`` (``--require-seal``), a server whose chain
   has links but no valid checkpoint is ``unsealed``.

Trap: without ``--seal-target`` the only checkpoints are the ones the store itself holds, and
someone who can write the store can delete them all and recompute the chain: the check then
sees an unsealed chain, not a broken one. ``--require-seal`` makes that a finding; the seal
target (which they cannot delete from under its retention rule) is what makes it evidence.

An object under the seal target that is not a checkpoint record (someone who may add objects
to the bucket wrote it) is ``malformed_checkpoint``, never a crash of the whole check.

A checkpoint the chain does not run through (the producer died after publishing it and before
storing it; docs/tamper-evidence.md) is reported by the chain check as ``inserted``; with a
valid signature that becomes the note ``checkpoint_unlinked``.

Trap: links are remembered only for the numbers the seal target's checkpoints sign and a short
window behind each checkpoint link, never the whole chain.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, TextIO

from auditstream import checkpoint
from auditstream.chain import Link
from auditstream.mysql import Connection
from auditstream.signing import Keyring
from ops.verify import control
from ops.verify.report import Finding, VerifyReport

_WINDOW = 64  # links kept behind the head, for the checkpoint links in the chain
SEAL_KINDS = ("checkpoint", "skip")


def control_links(conn: Connection, server: str | None = None) -> list[Link]:
    """The checkpoint and skip links of ``audit_control`` (none without the v3 columns)."""
    have = control.control_columns(conn)
    if "signature" not in have:
        return []
    return control.chain_links(conn, SEAL_KINDS, server, have)


@dataclass
class _Server:
    checkpoints: dict[tuple[str, str], Link] = field(default_factory=dict)
    chain: dict[int, str] = field(default_factory=dict)  # wanted numbers -> stored chain
    window: OrderedDict[int, str] = field(default_factory=OrderedDict)
    last_seq: int = 0
    control_seqs: list[int] = field(default_factory=list)
    skips: list[Link] = field(default_factory=list)


@dataclass
class SealCheck:
    """Steps 1-5 for one run of ``verify`` (``watch`` a store's links, then ``finish``)."""

    keys: Keyring
    outside: list[Link] = field(default_factory=list)  # the seal target's checkpoints
    #: the seal target's objects that are not checkpoints: ``(server_uuid, object, why)``
    malformed: list[tuple[str, str, str]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    #: a server with links and no valid checkpoint is a finding (``unsealed``), not a note
    require: bool = False
    _servers: dict[str, _Server] = field(default_factory=dict)
    _tail: bool = True

    @classmethod
    def with_objects(
        cls,
        keys: Keyring,
        records: Iterable[tuple[str, dict[str, Any]]],
        malformed: Iterable[tuple[str, str, str]] = (),
        *,
        require: bool = False,
    ) -> SealCheck:
        """Step 1's outside half: the seal target's ``(object name, record)``.

        ``malformed``: its objects that are not checkpoints, ``(server_uuid, name, why)``.
        """
        links = [Link.control(r["server_uuid"], r, chain=r.get("chain"), seq=r.get("chain_seq"),
                              where=f"object {name}") for name, r in records]  # fmt: skip
        return cls(keys, links, list(malformed), require=require)

    def watch(self, links: Iterable[Link]) -> Iterator[Link]:
        """Pass a store's links through, remembering what steps 1-3 need."""
        self._servers = defaultdict(_Server)
        wanted: dict[str, set[int]] = defaultdict(set)
        for cp in self.outside:
            wanted[cp.server_uuid].add(int(checkpoint.fields(cp)["signed_seq"]))
        for link in links:
            s = self._servers[link.server_uuid]
            if link.seq is not None and link.chain is not None:
                s.last_seq = max(s.last_seq, link.seq)
                if link.seq in wanted[link.server_uuid]:
                    s.chain[link.seq] = link.chain
                s.window[link.seq] = link.chain
                while len(s.window) > _WINDOW:
                    s.window.popitem(last=False)
            if link.kind == "checkpoint":
                f = checkpoint.fields(link)
                s.checkpoints[(f["checkpoint_seq"], f["signature"])] = link
                signed = int(f["signed_seq"])
                if signed in s.window:
                    s.chain[signed] = s.window[signed]
            if link.kind in SEAL_KINDS and link.seq is not None:
                s.control_seqs.append(link.seq)
            if link.kind == "skip":
                s.skips.append(link)
            yield link

    def finish(self, report: VerifyReport, *, tail: bool = True) -> None:
        """Steps 2-5 for the store just verified: findings into ``report``, lines to print.

        ``tail``: the store should hold the newest links (step 3's ``truncated``).
        """
        self._tail = tail
        self.lines = []
        found = [
            Finding("malformed_checkpoint", uuid, None, "checkpoint object", f"object {name}", why)
            for uuid, name, why in self.malformed
        ]
        by_server: dict[str, dict[tuple[str, str], Link]] = defaultdict(dict)
        for uuid, s in self._servers.items():
            by_server[uuid].update(s.checkpoints)
        for cp in self.outside:
            f = checkpoint.fields(cp)
            by_server[cp.server_uuid].setdefault((f["checkpoint_seq"], f["signature"]), cp)
        for uuid in sorted(by_server):
            s = self._servers.get(uuid, _Server())
            valid = self._server(uuid, s, by_server[uuid], found)
            self._unlink(report, uuid, valid)
        report.findings.extend(found)

    def print(self, out: TextIO) -> None:
        """The per-server seal lines of the last ``finish``."""
        for line in self.lines:
            print(line, file=out)

    def _server(
        self, uuid: str, s: _Server, cps: dict[tuple[str, str], Link], found: list[Finding]
    ) -> set[int]:
        valid: dict[int, Link] = {}
        for cp in sorted(cps.values(), key=lambda x: int(checkpoint.fields(x)["checkpoint_seq"])):
            f = checkpoint.fields(cp)
            number, signed = int(f["checkpoint_seq"]), int(f["signed_seq"])
            ok = checkpoint.check(self.keys, cp)  # step 2
            if ok is None:
                found.append(_finding("unknown_key", cp, f"key id {f['key_id']} is not trusted"))
                continue
            if not ok:
                found.append(_finding("bad_signature", cp, "the signature does not verify"))
                continue
            valid.setdefault(number, cp)
            stored = s.chain.get(signed)  # step 3
            if stored is not None and stored != f["signed_chain"]:
                found.append(_finding("seal_mismatch", cp, f"checkpoint {number} signed link "
                    f"{signed} as {f['signed_chain']}; the store holds {stored}"))  # fmt: skip
            elif stored is None and self._tail and s.last_seq < signed:
                end = f"ends at link {s.last_seq}" if s.last_seq else "holds no link of it"
                found.append(_finding("truncated", cp, f"checkpoint {number} signed link "
                    f"{signed}; the store {end}"))  # fmt: skip
        numbers = sorted(valid)  # step 4
        missing = [n for n in range(1, numbers[-1]) if n not in valid] if numbers else []
        if missing:
            first = valid[numbers[0]]
            found.append(_finding("checkpoint_gap", first, f"checkpoints {_ranges(missing)} "
                "are missing (deleted before they reached the seal target?)"))  # fmt: skip
        for skip in s.skips:  # step 5
            f = checkpoint.fields(skip)
            found.append(_finding("skip", skip, f"explained skip from {f['from_timestamp']}#"
                f"{f['from_id']} by {f['actor']}: {f['detail']}"))  # fmt: skip
        if numbers:
            last = checkpoint.fields(valid[numbers[-1]])
            signed = int(last["signed_seq"])
            after = s.last_seq - signed - sum(1 for n in s.control_seqs if n > signed)
            self.lines.append(
                f"  sealed {uuid}: last checkpoint {numbers[-1]} signs link {signed} "
                f"(key {last['key_id']}), {max(after, 0)} event(s) after it not yet sealed"
            )
        elif s.last_seq:
            self.lines.append(f"  sealed {uuid}: no valid checkpoint; nothing is sealed")
            if self.require:
                found.append(Finding("unsealed", uuid, s.last_seq, "checkpoints", "the seal check",
                    f"{s.last_seq} link(s) and no valid checkpoint (--require-seal)"))  # fmt: skip
        return set(valid)

    def _unlink(self, report: VerifyReport, uuid: str, valid: set[int]) -> None:
        """An ``inserted`` checkpoint with a valid signature is a producer crash, not tampering."""
        for i, f in enumerate(report.findings):
            if (
                f.kind == "inserted"
                and f.server_uuid == uuid
                and f.position.startswith("checkpoint ")
            ):
                number = f.position.split()[1]
                if number.isdigit() and int(number) in valid:
                    report.findings[i] = replace(f, kind="checkpoint_unlinked", detail=(
                        "a signed checkpoint the chain does not run through (the producer "
                        "stopped before storing it): its signature still holds"))  # fmt: skip


def _finding(kind: str, link: Link, detail: str) -> Finding:
    return Finding(kind, link.server_uuid, link.seq, link.position, link.where, detail)


def _ranges(numbers: list[int]) -> str:
    return ", ".join(str(n) for n in numbers[:20]) + (" ..." if len(numbers) > 20 else "")
