"""The layer contract ([tool.importlinter] in pyproject.toml): imports only point down.

The contract is checked on the tree as it is, and on copies of the tree with one upward import
added, so a contract that no longer catches anything fails here too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
PACKAGES = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
    "root_packages"
]


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_every_top_level_package_is_in_the_contract() -> None:
    on_disk = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert on_disk == set(PACKAGES)


def test_the_tree_has_no_upward_import() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packages' Python files and pyproject.toml, outside the repository."""
    copy = tmp_path_factory.mktemp("tree")
    shutil.copy(ROOT / "pyproject.toml", copy)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, copy / package, ignore=shutil.ignore_patterns("*.pyc"))
    return copy


@pytest.mark.parametrize(
    ("module", "statement", "arrow"),
    [
        # kernel -> operator tools (what the tools' old home made routine)
        ("auditstream/errors.py", "import ops.cli", "auditstream.errors -> ops.cli"),
        # kernel -> service, written lazily inside a function
        (
            "auditstream/dsn.py",
            "def _late() -> None:\n    import consumer.targets",
            "auditstream.dsn -> consumer.targets",
        ),
        # schemas -> service
        ("schemas/registry.py", "import producer.retry", "schemas.registry -> producer.retry"),
        # service -> service (the middle layer's members are independent)
        ("producer/retry.py", "import consumer.errors", "producer.retry -> consumer.errors"),
        # service -> top
        ("emulator/errors.py", "import bench.machine", "emulator.errors -> bench.machine"),
        # operator tools -> bench
        ("ops/status.py", "import bench.machine", "ops.status -> bench.machine"),
    ],
)
def test_an_upward_import_breaks_the_contract(
    tree_copy: Path, module: str, statement: str, arrow: str
) -> None:
    path = tree_copy / module
    original = path.read_text()
    path.write_text(original + "\n\n" + statement + "\n")
    try:
        result = lint_imports(tree_copy)
    finally:
        path.write_text(original)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "0 kept, 1 broken" in result.stdout
    assert arrow in " ".join(result.stdout.split())
