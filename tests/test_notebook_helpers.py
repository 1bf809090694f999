"""The package's helpers for notebooks and for the loss plots: the live view's pieces, `Result`'s display and
saving, Pillow images as inputs, the side-by-side picture, the padding of a batch to the devices."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from nst_jax import api
from nst_jax.config import Config
from nst_jax.io import images, plot
from nst_jax.run import planning


def test_loss_plot_draws_one_line_per_term_and_job_and_one_legend_entry_per_term():
    """Two jobs: 4 terms x 2 jobs = 8 lines, each the weighted values of its own job, and 4 legend entries (before
    the fix every job's line drew all jobs' columns, with one legend entry per column)."""
    from matplotlib.figure import Figure

    steps = 5
    history = {k: np.stack([np.arange(1, steps + 1) * (j + 1.0) * (i + 1) for j in range(2)], axis=1)
               for i, k in enumerate(("content", "style", "tv", "total"))}
    weights = {"content": 2.0, "style": 10.0, "tv": 3.0}
    ax = Figure().subplots()
    plot.draw_losses(ax, history, weights)
    assert len(ax.lines) == 8
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["total", "content x 2", "style x 10", "tv x 3"]
    style_job_2 = ax.lines[2 * 2 + 1].get_ydata()  # order: total (2 jobs), content (2), style (2), tv (2)
    np.testing.assert_allclose(style_job_2, 10.0 * np.arange(1, steps + 1) * 2 * 2)


def test_result_saves_shows_and_converts_its_image(tmp_path):
    image = np.zeros((4, 6, 3), np.float32)
    image[:, :3] = 1.0  # left half white
    result = api.Result(image, {})
    pil = result.to_pil()
    assert pil.size == (6, 4) and pil.mode == "RGB" and pil.getpixel((0, 0)) == (255, 255, 255)
    shown = Image.open(io.BytesIO(result._repr_png_()))
    assert np.array_equal(np.asarray(shown), np.asarray(pil))
    result.save(tmp_path / "r.png")
    with Image.open(tmp_path / "r.png") as saved:
        assert np.array_equal(np.asarray(saved), np.asarray(pil))
    with pytest.raises(Exception, match="unsupported output format"):
        result.save(tmp_path / "r.gif")


def test_pillow_images_are_inputs_read_as_files_are(tmp_path):
    """A Pillow image gives the array its file gives: EXIF orientation applied, grayscale to RGB, alpha over white."""
    rgba = Image.new("RGBA", (3, 2), (255, 0, 0, 0))  # fully transparent red: white over white
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    rgba.save(tmp_path / "a.png")
    np.testing.assert_array_equal(images.as_image(rgba, "content"), images.load(tmp_path / "a.png"))
    assert images.as_image(rgba, "content")[0, 1].tolist() == [1.0, 1.0, 1.0]
    rotated = Image.new("RGB", (3, 2), (0, 255, 0))
    exif = rotated.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
    rotated.save(tmp_path / "r.jpg", exif=exif)
    with Image.open(tmp_path / "r.jpg") as im:
        assert images.as_image(im, "style").shape == (3, 2, 3)  # turned upright, as loading the file does
    gray = Image.new("L", (2, 2), 51)
    np.testing.assert_allclose(images.as_image(gray, "style"), np.full((2, 2, 3), 0.2), atol=1e-7)


def test_side_by_side_scales_each_picture_to_the_height_and_keeps_its_aspect():
    red = np.zeros((10, 20, 3), np.float32)
    red[..., 0] = 1.0
    blue = np.zeros((40, 20, 3), np.float32)
    blue[..., 2] = 1.0
    sheet = images.side_by_side([[red, blue]], height=20, gap=4)
    assert sheet.size == (40 + 4 + 10, 20)
    assert sheet.getpixel((5, 10)) == (255, 0, 0) and sheet.getpixel((42, 10)) == (255, 255, 255)
    assert sheet.getpixel((48, 10)) == (0, 0, 255)
    titled = images.side_by_side([[red], [blue, red]], [["a"], ["b", "c"]], height=20, gap=4)
    caption = max(10, 20 // 14) + 8
    assert titled.size == (10 + 4 + 40, 2 * (20 + caption) + 4)


@pytest.mark.parametrize("jobs, devices, expected", [(1, 8, 1), (4, 1, 4), (4, 8, 8), (6, 4, 8), (8, 4, 8),
                                                     (9, 8, 16), (2, 2, 2)])
def test_a_batch_is_padded_to_a_multiple_of_the_devices(jobs, devices, expected):
    assert planning.padded_jobs(jobs, devices) == expected


def test_runtime_names_the_cpu_and_exact_float32_here():
    from nst_jax import notebook

    runtime = notebook.runtime()
    assert runtime.backend == "cpu" and runtime.precision == "float32"
    assert "JAX backend cpu" in str(runtime) and not notebook.in_colab()
    Config(precision=notebook.PRECISIONS["gpu"][0])  # the suggested precisions are valid settings
    Config(precision=notebook.PRECISIONS["tpu"][0])


def test_the_torch_reference_imports_nothing_from_nst_jax():
    """It ships inside the package but stays an independent implementation: no import of nst_jax's code."""
    import ast
    from pathlib import Path

    import nst_jax

    tree = ast.parse((Path(nst_jax.__file__).parent / "reference" / "torch_reference.py").read_text())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert imported and not any(m.startswith(("nst_jax", ".")) or m == "" for m in imported), imported


def test_many_jobs_are_plotted_as_each_terms_median_and_range():
    from matplotlib.figure import Figure

    history = {k: np.tile(np.arange(1.0, 4.0)[:, None], (1, 6)) * np.arange(1.0, 7.0) for k in plot.TERMS_DRAWN}
    ax = Figure().subplots()
    plot.draw_losses(ax, history, {"content": 1.0, "style": 1.0, "tv": 1.0})
    assert len(ax.lines) == 4 and len(ax.collections) == 4  # a median line and a shaded range per term
    np.testing.assert_allclose(ax.lines[0].get_ydata(), np.arange(1.0, 4.0) * 3.5)  # median of 1..6 times the step


def test_pillow_32_bit_and_float_images_are_read_by_their_values():
    """Mode "I" with 8-bit values (Image.convert("I") of an 8-bit image) is divided by 255, not 65535 (before: a
    nearly black image); mode "F" outside [0, 1] is refused like an array (before: clipped to a white image)."""
    eight_bit = Image.new("L", (2, 2), 204)
    np.testing.assert_allclose(images.as_image(eight_bit.convert("I")), np.full((2, 2, 3), 0.8), atol=1e-6)
    sixteen = Image.fromarray(np.full((2, 2), 52428, np.int32), "I")
    np.testing.assert_allclose(images.as_image(sixteen), np.full((2, 2, 3), 0.8), atol=1e-6)
    with pytest.raises(ValueError, match=r"values lie in \[204, 204\]"):
        images.as_image(eight_bit.convert("F"))
    np.testing.assert_allclose(images.as_image(Image.fromarray(np.full((2, 2), 0.25, np.float32), "F")),
                               np.full((2, 2, 3), 0.25))


def test_side_by_side_cells_of_a_width_line_up_and_bad_calls_say_what_is_wrong():
    tall, wide = np.ones((40, 20, 3), np.float32), np.zeros((10, 40, 3), np.float32)
    sheet = images.side_by_side([[tall, wide], [wide, tall]], height=20, width=30, gap=2)
    assert sheet.size == (30 + 2 + 30, 20 + 2 + 20)
    assert sheet.getpixel((15, 10)) == (255, 255, 255) and sheet.getpixel((2, 10)) == (255, 255, 255)
    assert sheet.getpixel((32 + 15, 10)) == (0, 0, 0)  # the wide picture, letterboxed in its cell
    result = api.Result(np.full((8, 8, 3), 0.5, np.float32), {})
    assert images.side_by_side([[result]], height=8).getpixel((4, 4)) == (128, 128, 128)
    for rows, titles, match in (([], None, "at least one image"), ([[tall]], [["a", "b"]], "row by row"),
                                ([[np.zeros((4, 4))]], None, r"\[H, W, 3\]")):
        with pytest.raises(ValueError, match=match):
            images.side_by_side(rows, titles)
    with pytest.raises(ValueError, match="positive"):
        images.side_by_side([[tall]], height=0)


def test_live_view_outside_a_notebook_and_with_a_wrong_config_is_one_clear_error():
    from nst_jax import notebook

    with pytest.raises(RuntimeError, match="in a notebook"):
        notebook.LiveView(Config())
    with pytest.raises(TypeError, match="an instance, not the class"):
        notebook.LiveView("size=64")


def test_api_inputs_of_the_wrong_kind_say_what_is_expected():
    from nst_jax.weights import as_weights

    with pytest.raises(TypeError, match="weights must be an nst_jax.Weights, a weights file path or None"):
        as_weights(123)
    with pytest.raises(ValueError, match=r"non-empty \[H, W, 3\] RGB array, got shape \(0, 0, 3\)"):
        images.as_image(np.zeros((0, 0, 3), np.float32), "content")
    with pytest.raises(TypeError, match="config must be an nst_jax.Config"):
        api.stylize(np.zeros((16, 16, 3)), np.zeros((16, 16, 3)), None, {"size": 16})


def test_the_readmes_live_view_is_reached_after_a_plain_import():
    """Issue 49, item 20: `nst_jax.notebook.LiveView(config)` after `import nst_jax` was an AttributeError."""
    import subprocess
    import sys

    code = "import nst_jax; print(nst_jax.notebook.LiveView.__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "LiveView", out.stderr


def test_a_live_view_without_ipython_names_the_extra_that_brings_it(monkeypatch):
    """Issue 49, item 21: without IPython the advice was `nst_jax[plot]`, which does not install it."""
    import sys

    import pytest

    from nst_jax import Config
    from nst_jax.notebook import LiveView

    monkeypatch.setitem(sys.modules, "IPython", None)
    with pytest.raises(ImportError, match=r"IPython is missing\): pip install 'nst_jax\[notebook\]'"):
        LiveView(Config())


def test_a_notebooks_file_is_looked_for_here_then_in_the_repository(tmp_path, monkeypatch):
    """`notebook.find`, as the notebooks use it for CONTENT, STYLE, INIT and many_images' CONTENTS: absolute as
    given; relative, the working folder first, then the repository; a folder and a missing file are one-line
    InputErrors naming the places; `one_line` turns them into SystemExit."""
    from nst_jax import notebook
    from nst_jax.errors import InputError

    here, repo = tmp_path / "notebooks", tmp_path / "repo"
    (here / "pics").mkdir(parents=True)
    (repo / "pics").mkdir(parents=True)
    (repo / "pics" / "a.png").write_bytes(b"x")
    (here / "pics" / "b.png").write_bytes(b"x")
    (repo / "pics" / "b.png").write_bytes(b"x")
    monkeypatch.chdir(here)
    assert notebook.find("pics/a.png", "content image", repo) == repo / "pics" / "a.png"
    assert notebook.find("pics/b.png", "content image", repo) == here / "pics" / "b.png"  # here first
    assert notebook.find(repo / "pics" / "a.png", "content image") == repo / "pics" / "a.png"
    with pytest.raises(InputError, match=f"^{here / 'pics'}: is a folder; the style image must be a file$"):
        notebook.find("pics", "style image", repo)
    with pytest.raises(SystemExit, match=f"^error: pics/c.png: no such content image \\(looked for "
                                         f"{here / 'pics' / 'c.png'} and {repo / 'pics' / 'c.png'}\\)$"):
        with notebook.one_line():
            notebook.find("pics/c.png", "content image", repo)
    with pytest.raises(SystemExit, match="^error: steps must be an int, got '10'$"):
        with notebook.one_line():
            Config(steps="10")
    with pytest.raises(TypeError, match="^the content image must be a file path, got 5$"):  # CONTENT = 5
        notebook.find(5, "content image", repo)
    with pytest.raises(KeyError):  # anything else is a bug: its traceback stays
        with notebook.one_line():
            {}["x"]
