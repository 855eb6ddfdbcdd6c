"""What a run verifies: a bookmark range, and the anchor file (the latest link per server).

An **anchor** is the last link per server written somewhere the archive's operators cannot
rewrite (another account's bucket, a WORM object, a ticket): verifying against it proves the
archive still holds that link and everything before it. The file is JSON::

    {"format": "auditstream-anchor/1",
     "servers": {"<server_uuid>": {"seq": 32, "chain": "<hex>", "bookmark": ["<ts>", <id>]}}}
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from auditstream.chain import ChainState, Link
from auditstream.errors import ConfigError
from auditstream.position import Position

ANCHOR_FORMAT = "auditstream-anchor/1"


def in_range(
    links: Iterable[Link], since: Position | None, until: Position | None
) -> Iterator[Link]:
    """The links from each server's first event at or after ``since`` to its last up to ``until``.

    Gaps and dead letters between two events in range are in range. The first link is then not
    anchored to the genesis value: ``verify`` trusts it (give ``start`` to anchor it).
    """
    inside: dict[str, bool] = {}
    for link in links:
        state = inside.get(link.server_uuid)
        if link.kind == "event":
            pos = (link.fields[0], int(link.fields[1]))
            if until is not None and pos > until:
                inside[link.server_uuid] = False
                continue
            if state is None and (since is None or pos >= since):
                inside[link.server_uuid] = state = True
        if state:
            yield link


def read_anchor(path: Path) -> dict[str, ChainState]:
    """The anchored link per server.

    Raises:
        ConfigError: the file cannot be read or is not an anchor file.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the anchor file: {exc}", anchor=str(path)) from exc
    if not isinstance(data, dict) or data.get("format") != ANCHOR_FORMAT:
        raise ConfigError(f"not an {ANCHOR_FORMAT} file", anchor=str(path))
    try:
        return {
            uuid: ChainState(
                uuid,
                str(v["chain"]),
                int(v["seq"]),
                tuple(v["bookmark"]) if v.get("bookmark") else None,
            )
            for uuid, v in data["servers"].items()
        }
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"malformed anchor file: {exc!r}", anchor=str(path)) from exc


def write_anchor(path: Path, states: Mapping[str, ChainState]) -> None:
    """Write (atomically replace) the anchor file with ``states``."""
    servers = {
        uuid: {"seq": s.seq, "chain": s.hash, "bookmark": list(s.bookmark) if s.bookmark else None}
        for uuid, s in sorted(states.items())
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(
        json.dumps({"format": ANCHOR_FORMAT, "servers": servers}, indent=2) + "\n", encoding="utf-8"
    )
    tmp.replace(path)
