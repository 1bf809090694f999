"""Each script of benchmarks/ (those that reproduce the tables of docs/performance.md and the parity report) runs
from a checkout on the repository's own images: a tiny smoke run that must end with its table. The numbers of
such runs mean nothing; the scripts' real runs are in docs/performance.md."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # the README's test command leaves these to CI (pytest -m slow)

REPO = Path(__file__).resolve().parent.parent

RUNS = {
    "step_time": ["--sizes", "32", "--steps", "2"],
    "compile_time": ["--sizes", "32", "--repeats", "1"],
    "controls_cost": ["--size", "32", "--steps", "1", "--repeats", "1", "--only", "masks"],
    "default_program": ["--size", "32"],
    "chunk_size": ["--sizes", "32", "--chunks", "2", "--steps", "4"],
    "memory": ["--sizes", "32", "--steps", "1"],
    "batch_throughput": ["--size", "32", "--jobs", "1", "2", "--steps", "1"],
    "swd_sort": ["--sizes", "32", "--repeats", "1"],
    "time_to_quality": ["--size", "64", "--evals", "4", "--max-steps", "6", "--only", "lbfgs-armijo, clip"],
}


def smoke(script: str, *args, capsys, monkeypatch) -> str:
    """Run benchmarks/SCRIPT.py in this process, as `python benchmarks/SCRIPT.py ARGS` from the repository root
    would (the script's folder first on the module path, as Python puts it for a script: some import a sibling; the
    shared helpers are `nst_jax.reference.bench`); returns what it printed. In-process: the imports
    and compilations of one script serve the next (the children some scripts start are processes of their own)."""
    import runpy

    monkeypatch.chdir(REPO)
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    monkeypatch.setattr(sys, "argv", [f"benchmarks/{script}.py", *map(str, args)])
    capsys.readouterr()
    runpy.run_path(str(REPO / "benchmarks" / f"{script}.py"), run_name="__main__")
    return capsys.readouterr().out


@pytest.mark.parametrize("script", sorted(RUNS))
def test_benchmark_script_runs_and_prints_its_table(script, torch, capsys, monkeypatch):
    out = smoke(script, *RUNS[script], capsys=capsys, monkeypatch=monkeypatch)
    assert "| " in out and "---" in out, out[-2000:]  # a table


def test_parity_report_runs_on_a_weights_file(h5_files, torch, capsys, monkeypatch):
    out = smoke("parity_report", "--weights", h5_files["legacy"], "--size", "32", capsys=capsys,
                monkeypatch=monkeypatch)
    assert "relu5_1" in out and "pytorch-tutorial" in out
