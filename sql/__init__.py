"""All DDL and source-side setup, as ``.sql`` files loaded by name.

``load("archive/audit_data_template")`` returns the text; ``statements(...)`` splits it into
statements (files use ``;`` at line ends and no procedures, so the split is exact).
"""

from __future__ import annotations

from importlib.resources import files


def load(name: str) -> str:
    """The text of ``sql/<name>.sql`` (e.g. ``"archive/offsets"``)."""
    return (files(__name__) / f"{name}.sql").read_text(encoding="utf-8")


def statements(name: str) -> list[str]:
    """The statements of ``sql/<name>.sql``, without comments-only chunks."""
    out = []
    for chunk in load(name).split(";\n"):
        body = "\n".join(
            line for line in chunk.splitlines() if not line.strip().startswith("--")
        ).strip()
        if body:
            out.append(body.rstrip(";"))
    return out
