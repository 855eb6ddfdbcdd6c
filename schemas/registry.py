"""Loading the schema files: the current schema and every published version."""

from __future__ import annotations

import json
import re
from functools import cache
from importlib.resources import files
from typing import Any

from fastavro import parse_schema
from fastavro.schema import fingerprint, to_parsing_canonical_form

AUDIT_EVENT = "audit_event"
CONTROL_EVENT = "control_event"
_VERSION = re.compile(r"(?P<name>[a-z_]+)\.v(?P<n>\d+)\.avsc")


@cache
def schema_text(name: str) -> str:
    """The current schema ``name`` as JSON text (what a Schema Registry is given)."""
    return (files(__package__) / f"{name}.avsc").read_text(encoding="utf-8")


@cache
def current(name: str) -> Any:
    """The current schema ``name``, parsed by fastavro."""
    return parse_schema(json.loads(schema_text(name)))


@cache
def versions(name: str) -> dict[int, Any]:
    """Every published version of ``name``: ``{version: parsed schema}``, oldest first."""
    out: dict[int, Any] = {}
    for entry in (files(__package__) / "versions").iterdir():
        match = _VERSION.fullmatch(entry.name)
        if match and match["name"] == name:
            out[int(match["n"])] = parse_schema(json.loads(entry.read_text(encoding="utf-8")))
    return dict(sorted(out.items()))


def fingerprint64(parsed: Any) -> bytes:
    """The CRC-64-AVRO fingerprint of a schema's canonical form, 8 bytes little-endian.

    This is what Avro single-object encoding puts after the ``C3 01`` marker.
    """
    # fastavro already returns the bytes in little-endian order, as Java and the spec do.
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(parsed), "CRC-64-AVRO"))


@cache
def by_fingerprint() -> dict[bytes, tuple[str, Any]]:
    """Every published writer schema of every record, by fingerprint."""
    table: dict[bytes, tuple[str, Any]] = {}
    for name in (AUDIT_EVENT, CONTROL_EVENT):
        for parsed in versions(name).values():
            table[fingerprint64(parsed)] = (name, parsed)
    return table
