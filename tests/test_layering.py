"""Dependencies point one way: models <- streaming <- assist (README "Layout"), checked on the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {"models": ("streaming", "assist"), "streaming": ("assist",)}


def imported(path: Path, root: Path = ROOT) -> set[str]:
    """Top-level packages `path` (under `root`) imports: absolute and relative, at any depth in the module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's own package
                found.add(path.relative_to(root).parts[0])
            elif node.module:
                found.add(node.module.split(".")[0])
    return found


def test_imported_sees_absolute_relative_and_nested_imports(tmp_path: Path) -> None:
    probe = tmp_path / "models" / "sub" / "probe.py"
    probe.parent.mkdir(parents=True)
    probe.write_text("import os\nfrom assist.events import Event\ndef f():\n    import streaming.types\n"
                     "from .. import asr\n")
    assert imported(probe, tmp_path) == {"os", "assist", "streaming", "models"}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_lower_layers_do_not_import_higher_ones(package: str) -> None:
    bad = [
        f"{path.relative_to(ROOT)} imports {dep}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for dep in sorted(imported(path) & set(FORBIDDEN[package]))
    ]
    assert not bad, "\n".join(bad)
