"""The code passes the linter with the rules of pyproject.toml ([tool.ruff]): the package, tests, benchmarks and
examples."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_ruff_finds_nothing():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is a test dependency: pip install -e '.[test]'"
    done = subprocess.run([ruff, "check", "nst_jax", "tests", "benchmarks", "examples"], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def _private_uses(source: str) -> list[str]:
    """Private names of nst_jax a script uses: `from nst_jax[.x] import _y`, and `m._y` where m was imported from
    nst_jax (`import nst_jax.x as m`, `from nst_jax import m`)."""
    import ast

    tree, modules, found = ast.parse(source), set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "nst_jax":
            for alias in node.names:
                if alias.name.startswith("_"):
                    found.append(f"{node.module}.{alias.name}")
                modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "nst_jax":
                    modules.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            base = node.value
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(base, ast.Name) and base.id in modules:
                found.append(ast.unparse(node))
    return found


def test_the_private_name_check_sees_both_forms():
    assert _private_uses("from nst_jax.run.loop import _x\nimport nst_jax.core.losses as l\nl._GRAM\n") == [
        "nst_jax.run.loop._x", "l._GRAM"]
    assert _private_uses("from nst_jax.run import loop\nloop.optimize()\nx._y\n") == []


def test_benchmarks_use_no_private_name_of_the_package():
    """Issue 36: scripts reach the package through its public names only (a probe that needed a private one got a
    proper option, or was dropped)."""
    for script in sorted((REPO / "benchmarks").glob("*.py")):
        assert _private_uses(script.read_text()) == [], script.name


def test_tests_reach_the_package_through_public_names_only():
    """Issue 50: tests test through the public seams (the loop's `stops`, `optimize_batches`, the Reporter's
    methods), never by importing or patching a private name of the package. `_cache_size` is JAX's method of a
    jitted function (the compilation count), not a name of nst_jax."""
    for test in sorted((REPO / "tests").rglob("*.py")):
        if test.name == "test_lint.py":  # its own examples of what the check finds
            continue
        source = test.read_text()
        found = [u for u in _private_uses(source) if not u.endswith("._cache_size")]
        found += re.findall(r"setattr\([^,()]+, \"(_[a-z]\w*)\"", source)
        assert found == [], test.relative_to(REPO)


def test_scripts_reach_shared_helpers_as_a_package_not_by_path_edits():
    """Issue 50: benchmarks share `nst_jax.reference.bench`; none edits the module path."""
    for script in sorted((REPO / "benchmarks").glob("*.py")) + sorted((REPO / "examples").glob("*.py")):
        assert "sys.path" not in script.read_text(), script.name
