"""Dependency direction: flows -> amad, never back (parsed, not grepped)."""

from __future__ import annotations

import ast
from pathlib import Path

AMAD = Path(__file__).resolve().parents[2] / "amad"
FORBIDDEN = ("prefect", "flows")


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_library_never_imports_orchestration() -> None:
    files = sorted(AMAD.rglob("*.py"))
    assert files, "amad/ has no modules"
    bad = [
        f"{f.relative_to(AMAD.parent)}: {name}"
        for f in files
        for name in _imports(f)
        if name.split(".")[0] in FORBIDDEN
    ]
    assert not bad, bad


def test_every_module_opens_with_a_docstring() -> None:
    missing = [
        str(f.relative_to(AMAD.parent))
        for f in sorted(AMAD.rglob("*.py"))
        if f.stat().st_size and ast.get_docstring(ast.parse(f.read_text())) is None
    ]
    assert not missing, missing
