"""Tests of `nst_jax.cli.command`: `python -m nst_jax` end to end on tiny images and random (not pretrained) weights."""

import hashlib
import json

import jax
import pytest
from conftest import main, run_cli
from PIL import Image

from nst_jax.cli import command as cli


def test_tiny_run_writes_output_log_and_intermediates(h5_files, image_files, tmp_path):
    out, log = tmp_path / "out.png", tmp_path / "run.jsonl"
    status = main(["--content", image_files["content"], "--style", image_files["style"], "--output", out,
                   "--weights", h5_files["nested"], "--size", "32", "--steps", "5", "--optimizer", "adam",
                   "--init", "content", "--log", log, "--save-every", "2", "--quiet"])
    assert status == 0
    assert Image.open(out).size == (32, 24)  # content is 64x48, longer side -> 32
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 1, 2, 3, 4]
    assert all(set(r) == {"step", "content", "style", "tv", "total"} for r in records)
    for r in records:  # the default weights: alpha 1, beta 500, tv 0
        assert r["total"] == pytest.approx(r["content"] + 500 * r["style"], rel=1e-5)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.00002.png", "out.00004.png", "out.json", "out.png",
                                                          "run.jsonl"]
    summary = json.loads((tmp_path / "out.json").read_text())  # the record of the run, next to the image
    assert summary["output"] == str(out) and summary["content"] == str(image_files["content"])
    settings = summary["settings"]
    assert (settings["size"], settings["steps"], settings["optimizer"], settings["init"]) == (32, 5, "adam", "content")
    assert settings["style_layers"] == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    weights_bytes = h5_files["nested"].read_bytes()
    assert summary["weights"] == {"source": "keras-h5", "file": str(h5_files["nested"]),
                                  "sha256": hashlib.sha256(weights_bytes).hexdigest()}
    assert summary["final_losses"] == pytest.approx({k: records[-1][k] for k in ("content", "style", "tv", "total")})
    assert summary["environment"]["backend"] == "cpu" and summary["environment"]["jax"] == jax.__version__
    t = summary["time"]
    assert t["total_s"] == pytest.approx(t["startup_s"] + t["steps_s"]) and 0 < t["first_chunk_s"] <= t["steps_s"]
    assert t["steps_per_s"] > 0


def test_module_entry_point_runs_end_to_end(h5_files, image_files, tmp_path):
    out = tmp_path / "out.jpg"
    status, err = run_cli("--content", image_files["content"], "--style", image_files["style"], "--output", out,
                          "--weights", h5_files["legacy"], "--size", "32", "--steps", "3")
    assert status == 0, err
    assert Image.open(out).format == "JPEG"
    assert "wrote" in err


@pytest.mark.parametrize("quiet", [False, True])
def test_unusable_compilation_cache_folder_is_one_warning_and_no_cache(tmp_path, monkeypatch, capsys, quiet):
    """A cache folder that cannot be created (its parent is a file) leaves JAX's cache setting alone and says so in
    one line; --quiet silences it."""
    import jax

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("NST_JAX_COMPILATION_CACHE", str(blocker / "xla"))
    before = jax.config.jax_compilation_cache_dir
    cli.use_compilation_cache(quiet)
    assert jax.config.jax_compilation_cache_dir == before
    err = capsys.readouterr().err
    assert err == "" if quiet else (err.count("\n") == 1 and f"{blocker / 'xla'}" in err and "warning" in err)
