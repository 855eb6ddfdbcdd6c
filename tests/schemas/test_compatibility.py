"""Schema evolution: the current schema is FULL compatible with every published version."""

from __future__ import annotations

import io
import json
from importlib.resources import files
from typing import Any

import fastavro
import pytest

from schemas import registry

NAMES = [registry.AUDIT_EVENT, registry.CONTROL_EVENT]


def minimal(schema: Any) -> dict[str, Any]:
    """A record that sets every field without a default (others take their defaults)."""
    values: dict[str, Any] = {"string": "x", "long": 1, "double": 1.0, "int": 1, "boolean": True}
    out: dict[str, Any] = {}
    for field in schema["fields"]:
        if "default" in field:
            continue
        kind = field["type"]
        out[field["name"]] = 0 if isinstance(kind, dict) else values[kind]
    return out


def roundtrip(record: dict[str, Any], writer: Any, reader: Any) -> Any:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, writer, record)
    buf.seek(0)
    return fastavro.schemaless_reader(buf, writer, reader)


@pytest.mark.parametrize("name", NAMES)
def test_current_schema_is_the_newest_published_version(name: str) -> None:
    published = registry.versions(name)
    assert published, f"no published version of {name}"
    newest = max(published)
    text = (files("schemas") / "versions" / f"{name}.v{newest}.avsc").read_text()
    assert json.loads(text) == json.loads(registry.schema_text(name))


@pytest.mark.parametrize("name", NAMES)
def test_full_compatibility_with_every_earlier_version(name: str) -> None:
    current = registry.current(name)
    for version, old in registry.versions(name).items():
        # backward: the new reader reads old data; forward: an old reader reads new data.
        assert roundtrip(minimal(old), old, current) is not None, version
        assert roundtrip(minimal(current), current, old) is not None, version


@pytest.mark.parametrize("name", NAMES)
def test_every_field_added_after_v1_has_a_default(name: str) -> None:
    first = registry.versions(name)[min(registry.versions(name))]
    first_fields = {f["name"] for f in first["fields"]}
    for field in registry.current(name)["fields"]:
        if field["name"] not in first_fields:
            assert "default" in field, field["name"]
