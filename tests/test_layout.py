"""The package's layout holds: its import graph has no cycle and no upward arrow (issue 50).

Floors, from the bottom: `errors`; `core/` (pure JAX); `config`; `io/`; `weights/`; `run/`; the front ends
(`notebook`, `cli/`). `reference/` (the PyTorch reference, test writers) may import anything and nothing in the
package imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import nst_jax

ROOT = Path(nst_jax.__file__).resolve().parent


def import_graph() -> dict[str, set[str]]:
    """{module: the nst_jax modules it imports}, every import of every file (also those inside functions), relative
    ones resolved; `from P import m` counts as importing the module P.m where m is one."""
    modules = {}
    for f in ROOT.rglob("*.py"):
        parts = f.relative_to(ROOT.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    graph = {}
    for name, f in modules.items():
        package = name if f.name == "__init__.py" else name.rsplit(".", 1)[0]
        targets = set()
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package
                for _ in range(max(node.level - 1, 0)):
                    base = base.rsplit(".", 1)[0]
                module = (base + ("." + node.module if node.module else "")) if node.level else (node.module or "")
                targets |= {f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module for a in node.names}
            elif isinstance(node, ast.Import):
                targets |= {a.name for a in node.names}
        graph[name] = {t for t in targets if t in modules and t not in (name, "nst_jax")}  # the root imports lazily
    return graph


def _under(module: str, *packages: str) -> bool:
    return any(module == f"nst_jax.{p}" or module.startswith(f"nst_jax.{p}.") for p in packages)


def test_the_graph_sees_relative_and_function_level_imports():
    graph = import_graph()
    assert "nst_jax.core.vgg" in graph["nst_jax.core.objective"]  # from . import losses, pixels, vgg
    assert "nst_jax.run.checkpoint" in graph["nst_jax.cli.reporter"]  # inside a function


def test_the_package_has_no_import_cycles():
    graph, state = import_graph(), {}

    def visit(module, path):
        state[module] = "open"
        for target in graph[module]:
            assert state.get(target) != "open", " -> ".join(path + [target])
            if target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in graph:
        if module not in state:
            visit(module, [module])


RULES = {  # a floor: what its modules may never import
    "core": ("config", "io", "weights", "run", "cli", "notebook", "api", "reference"),
    "io": ("weights", "run", "cli", "notebook", "api", "reference"),
    "weights": ("run", "cli", "notebook", "api", "reference"),
    "run": ("cli", "notebook", "api", "reference"),
}


def test_no_import_goes_up_a_floor_and_nothing_imports_the_reference():
    bad = []
    for module, targets in import_graph().items():
        for target in targets:
            floor = next((f for f in RULES if _under(module, f)), None)
            if floor and _under(target, *RULES[floor]):
                bad.append(f"{module} -> {target}")
            if _under(target, "reference") and not _under(module, "reference"):
                bad.append(f"{module} -> {target}")
    assert bad == []
