"""Dependency direction: flows -> amad, never back (parsed, not grepped)."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

AMAD = Path(__file__).resolve().parents[2] / "amad"
FORBIDDEN = ("prefect", "flows")


def _imports(path: Path, *, with_members: bool = False) -> list[str]:
    """Modules ``path`` imports anywhere; with members, ``from a import b`` also yields ``a.b``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            if with_members:
                names += [f"{node.module}.{a.name}" for a in node.names]
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


# --- the layering rules (ARCHITECTURE.md): what each package of amad/ may import ----------------

STDLIB = frozenset(__import__("sys").stdlib_module_names) | {"__future__"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(AMAD.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package_imports(package: str, *, with_members: bool = False) -> dict[str, list[str]]:
    """Every import (top-level or inside a function) of each module under ``amad/<package>``."""
    root = AMAD / package if package else AMAD
    assert root.exists(), f"amad/{package} does not exist"
    return {
        _module_name(f): _imports(f, with_members=with_members) for f in sorted(root.rglob("*.py"))
    }


def _violations(package: str, allowed: Callable[[str], bool]) -> list[str]:
    return [
        f"{module} imports {name}"
        for module, names in _package_imports(package).items()
        for name in names
        if not allowed(name)
    ]


def _within(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_nn_imports_only_torch_and_config() -> None:
    def ok(name: str) -> bool:
        return name.split(".")[0] in STDLIB or _within(name, "torch", "amad.config", "amad.nn")

    assert not _violations("nn", ok)


def test_series_never_imports_torch_or_higher_layers() -> None:
    def ok(name: str) -> bool:
        if _within(name, "torch"):
            return False
        if name.startswith("amad"):
            return _within(name, "amad.config", "amad.errors", "amad.files", "amad.series")
        return True

    assert not _violations("series", ok)


@pytest.mark.parametrize("package", ["telemetry", "storage", "evaluation"])
def test_data_layers_never_import_the_model(package: str) -> None:
    def ok(name: str) -> bool:
        return not _within(name, "torch", "amad.nn", "amad.detector", "amad.bench")

    assert not _violations(package, ok)


def test_only_the_edges_import_bench_or_devstack() -> None:
    edges = ("amad.stages", "amad.cli", "amad.bench", "amad.devstack")
    bad = [
        f"{module} imports {name}"
        for module, names in _package_imports("").items()
        if not _within(module, *edges)
        for name in names
        if _within(name, "amad.bench", "amad.devstack")
    ]
    assert not bad, bad


def test_no_import_cycles_between_amad_modules() -> None:
    """Imports inside functions count too: a lazy import that closes a circle is still a circle."""
    graph = {
        module: {n for n in names if n.startswith("amad.") and n != module}
        for module, names in _package_imports("", with_members=True).items()
    }
    modules = set(graph)
    # an import of a package counts as an import of its __init__ module
    graph = {m: {n for n in deps if n in modules} for m, deps in graph.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                visit(dep, [*stack, dep])
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, cycles


def test_the_front_door_exports_its_names_lazily() -> None:
    import subprocess
    import sys

    import amad

    for name in amad.__all__:
        assert getattr(amad, name) is not None, name
    code = "import amad, amad.config, sys; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", "importing amad.config pulled in torch"


def test_all_names_every_export() -> None:
    import amad

    assert set(amad.__all__) == {"__version__", *amad._EXPORTS}
