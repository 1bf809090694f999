"""The notebooks in notebooks/, executed top to bottom in a Jupyter kernel (nbclient + ipykernel) on CPU, with tiny
parameters and random-valued weights written by the test: no cell may fail, and each must show its figures.

`pytest -k notebook` selects these tests. The parameters are overridden as papermill does: a cell inserted after
the cell tagged "parameters".
"""

from __future__ import annotations

import base64
import io
import os
import re
from pathlib import Path

import nbformat
import pytest
from PIL import Image

pytestmark = pytest.mark.slow  # the README's test command leaves these to CI (pytest -m slow)

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = REPO / "notebooks"
NAMES = ("quickstart.ipynb", "many_images.ipynb", "parity.ipynb")
TIMEOUT_S = 600  # per cell


def _read(name: str):
    return nbformat.read(NOTEBOOKS / name, as_version=4)


def run_notebook(name: str, parameters: dict, env: dict | None = None, folder: Path = NOTEBOOKS):
    """Execute notebooks/NAME in a fresh kernel started in `folder` (default notebooks/, as Jupyter opened from the
    checkout starts it), with `parameters` assigned in a cell right after the "parameters" cell. Returns the
    executed notebook (a CellExecutionError fails the test)."""
    from nbclient import NotebookClient

    nb = _read(name)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    source = "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))
    client = NotebookClient(nb, kernel_name="python3", timeout=TIMEOUT_S,
                            resources={"metadata": {"path": str(folder)}})
    client.execute(env={**os.environ, **(env or {})})
    return nb


def outputs(nb, kind: str) -> list:
    """Every output of the executed notebook that carries data of MIME type `kind` ("image/png", "text/plain")."""
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if kind in o.get("data", {})]


def text(nb) -> str:
    """All the printed text of the executed notebook (streams)."""
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


@pytest.fixture(scope="module")
def weights_file(h5_files) -> str:
    return str(h5_files["legacy"])  # random-valued VGG19 weights as a Keras .h5 file


def test_notebook_quickstart_runs_shows_its_view_and_writes_the_result(weights_file, tmp_path):
    """With two styles in the job, placed by masks, and Adam with averaging: the controls' parameters reach the run,
    and the picture row shows both styles (a list of styles broke the row before)."""
    out = tmp_path / "result.png"
    examples = REPO / "examples"
    nb = run_notebook("quickstart.ipynb", {
        "SIZE": 32, "STEPS": 4, "WEIGHTS": weights_file, "OUTPUT": str(out),
        "STYLE": [str(examples / "starry_night.jpg"), str(examples / "the_scream.jpg")],
        "STYLE_MASKS": (str(examples / "masks" / "left.png"), str(examples / "masks" / "right.png")),
        "OPTIMIZER": "adam", "AVERAGE": 0.9})
    pngs = outputs(nb, "image/png")
    assert len(pngs) == 2  # the live view (updated in place: its placeholder text became a picture) and the row
    live, row = (Image.open(io.BytesIO(base64.b64decode(o["data"]["image/png"]))) for o in pngs)
    assert live.height > row.height  # picture above loss curves
    assert row.width > 3 * row.height  # content | style 1 | style 2 | result
    with Image.open(out) as result:
        assert max(result.size) == 32
    printed = text(nb)
    assert "JAX backend cpu" in printed and "precision 'float32'" in printed
    assert f"weights: {weights_file}" in printed


def test_notebook_quickstart_says_in_one_line_when_it_cannot_clone(tmp_path):
    """Issue 51: where the install cell had to clone and could not, it ended in a CalledProcessError traceback.
    Started outside any checkout (so it must clone for the example images) with REPO_URL, now a parameter, naming
    a copy that does not exist: one line naming the address, what git said and the other ways in."""
    from nbclient.exceptions import CellExecutionError

    nowhere = tmp_path / "nowhere"
    with pytest.raises(CellExecutionError) as failed:
        run_notebook("quickstart.ipynb", {"REPO_URL": str(nowhere)}, folder=tmp_path)
    message = re.sub(r"\x1b\[[0-9;]*m", "", str(failed.value))  # the kernel's colours
    assert f"SystemExit: could not clone {nowhere} (" in message and "upload a wheel or zip" in message, message
    assert "CalledProcessError" not in message


def test_notebook_many_images_uses_all_four_devices_and_equals_one_by_one(weights_file, tmp_path):
    """Forced to 4 host devices: 2 contents x 3 styles = 6 jobs, padded to 8 and laid across all four."""
    nb = run_notebook("many_images.ipynb", {"SIZE": 32, "STEPS": 4, "WEIGHTS": weights_file},
                      env={"XLA_FLAGS": "--xla_force_host_platform_device_count=4"})
    printed = text(nb)
    assert "4 local device(s)" in printed
    assert re.search(r"batch: 6 images in [\d.]+ s = [\d.]+ images per minute \(compilation included\), on 4 "
                     r"device\(s\)", printed), printed
    found = re.search(r"first 4 steps: largest relative loss difference (\S+); final pictures: largest pixel "
                      r"difference (\S+)", printed)
    assert float(found.group(1)) < 1e-4 and float(found.group(2)) < 1e-3
    assert len(outputs(nb, "image/png")) == 2  # the live view and the grid


def test_notebook_parity_report(weights_file, tmp_path, torch):
    nb = run_notebook("parity.ipynb", {"SIZE": 32, "STEPS": 3, "WEIGHTS": weights_file,
                                       "WEIGHTS_NOTE": "(random-valued weights written by the test)"})
    printed = text(nb)
    assert "(random-valued weights written by the test)" in printed
    tables = [o["data"]["text/markdown"] for o in outputs(nb, "text/markdown")]
    assert len(tables) == 2 and "relu5_1" in tables[0] and "pytorch-tutorial" in tables[1]
    assert len(outputs(nb, "image/png")) == 2  # the bar chart and the loss curves
    worst = float(re.search(r"largest relative difference of any term at any step: (\S+)", printed).group(1))
    assert worst < 1e-4  # float32 on both sides, the same trajectory


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_committed_without_outputs_with_one_parameters_cell_and_its_colab_link(name):
    nb = _read(name)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "strip the outputs before committing"
    assert sum("parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1
    repository = re.search(r'^Repository = "(.+)"$', (REPO / "pyproject.toml").read_text(), re.M).group(1)
    owner_repo = repository.removeprefix("https://github.com/")
    link = f"https://colab.research.google.com/github/{owner_repo}/blob/main/notebooks/{name}"
    assert link in nb.cells[0].source
    assert link in (REPO / "README.md").read_text()
    assert f'REPO_URL = "{repository}"' in "".join(c.source for c in code)
    # Colab-only code runs only where Colab is: every google.colab import sits under an in_colab() test
    for cell in code:
        lines = cell.source.splitlines()
        for i, line in enumerate(lines):
            if "google.colab" in line:
                assert any("in_colab()" in earlier for earlier in lines[:i]), (name, line)
