"""Tests of `nst_jax.io.plot`: the loss curves."""

import sys

import pytest
from conftest import main
from PIL import Image


def test_plot_writes_a_png_of_the_losses_and_needs_matplotlib(h5_files, image_files, tmp_path, monkeypatch, capsys):
    """--plot PATH saves a PNG of the loss curves; without matplotlib the run is refused before any work, with
    one line that says how to install it."""
    pytest.importorskip("matplotlib")
    base = ["--content", image_files["content"], "--style", image_files["style"], "--weights", h5_files["legacy"],
            "--size", "32", "--steps", "4", "--optimizer", "adam", "--quiet"]
    assert main(base + ["--output", tmp_path / "a.png", "--plot", tmp_path / "losses.png"]) == 0
    with Image.open(tmp_path / "losses.png") as plot:
        assert plot.format == "PNG" and plot.size == (700, 400)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    assert main(base + ["--output", tmp_path / "b.png", "--plot", tmp_path / "b_losses.png"]) == 1
    err = capsys.readouterr().err
    assert "--plot needs matplotlib" in err and "nst_jax[plot]" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "b.png").exists() and not (tmp_path / "b_losses.png").exists()
