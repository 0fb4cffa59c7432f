"""The import direction of DESIGN.md, enforced: `cli → meshd → analysis/runtime/xds/
telemetry/router → control → translate/ca → model → resources → sources`, and no import
cycles.

A package may import itself and any package of a lower layer, never one of its own layer
or above. The graph is read from the source with `ast` (imports inside functions count
too: a lazy import is still a dependency), and cycles between modules are found with the
standard library's `graphlib`.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "sailmesh"

# Lower number = lower layer. `store` is a config source (it implements model's seam) and
# `apps` are the local stand-ins for sample images; both sit beside the runtime.
# `sources` reads `-f` inputs with the standard library only (the CLI sends them to meshd).
LAYERS: dict[str, int] = {
    "sources": -1,
    "resources": 0,
    "model": 1,
    "translate": 2, "ca": 2,
    "control": 3,
    "analysis": 4, "runtime": 4, "xds": 4, "telemetry": 4, "router": 4, "store": 4, "apps": 4,
    "meshd": 5,
    "cli": 6,
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Modules of sailmesh that `path` imports (absolute and relative)."""
    tree = ast.parse(path.read_text(), str(path))
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("sailmesh.")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            if not target.startswith("sailmesh"):
                continue
            # `from pkg import module` depends on the module; any other name on `target`.
            modules = {f"{target}.{a.name}" for a in node.names if _exists(f"{target}.{a.name}")}
            out |= modules if len(modules) == len(node.names) else {target, *modules}
    return {m for m in out if m != "sailmesh"}


def _exists(module: str) -> bool:
    rel = Path(*module.split(".")[1:])
    return (SRC / rel).with_suffix(".py").exists() or (SRC / rel / "__init__.py").exists()


def _graph() -> dict[str, set[str]]:
    return {_module_name(p): _imports(p) for p in sorted(SRC.rglob("*.py"))}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_package_has_a_layer() -> None:
    packages = {p.name for p in SRC.iterdir() if (p / "__init__.py").exists()}
    assert packages <= set(LAYERS), f"add {sorted(packages - set(LAYERS))} to LAYERS"


def test_imports_point_down_the_layers() -> None:
    wrong = []
    for module, targets in _graph().items():
        here = _package(module)
        for target in sorted(targets):
            there = _package(target)
            if here and there and here != there and LAYERS[there] >= LAYERS[here]:
                wrong.append(f"{module} imports {target} ({here} may not import {there})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles() -> None:
    graph = _graph()
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' → '.join(exc.args[1])}")
