"""Tests of `nst_jax.cli.jobs`: contents and styles made into jobs and batches, and their output names."""

import json

from conftest import main
from PIL import Image


def test_contents_of_different_shapes_run_one_per_batch(h5_files, image_files, tmp_path, capsys):
    """A folder of contents with two aspect ratios runs by default (one job per program on a CPU) and keeps each
    output's shape; asked to batch them, it runs one program per shape (issue 51: it was refused)."""
    contents = tmp_path / "contents"
    contents.mkdir()
    (contents / "a.png").write_bytes(image_files["content"].read_bytes())  # 48x64
    (contents / "b.png").write_bytes(image_files["style"].read_bytes())  # 64x64
    out = tmp_path / "out"
    out.mkdir()
    args = ["--content", contents, "--style", image_files["style"], "--output", out, "--weights", h5_files["legacy"],
            "--size", "32", "--steps", "2", "--optimizer", "adam", "--quiet"]
    assert main(args) == 0
    assert [Image.open(out / n).size for n in ("a_style.png", "b_style.png")] == [(32, 24), (32, 32)]
    batched = tmp_path / "batched"
    batched.mkdir()
    assert main([*args[:5], batched, *args[6:], "--batch-size", "2"]) == 0
    for name in ("a_style.png", "b_style.png"):  # each alone in its program: what the default run wrote
        assert (batched / name).read_bytes() == (out / name).read_bytes()


def test_several_contents_and_styles_make_one_batch(h5_files, image_files, tmp_path, capsys):
    """Two contents x one style folder -> two jobs in one run; outputs CONTENT_STYLE.png, log lines per job; the
    closing message gives the range of the jobs' final losses."""
    second = tmp_path / "second.png"
    Image.open(image_files["content"]).transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(second)
    styles = tmp_path / "styles"
    styles.mkdir()
    (styles / "s.png").write_bytes(image_files["style"].read_bytes())
    out, log = tmp_path / "out", tmp_path / "log.jsonl"
    out.mkdir()
    status = main(["--content", image_files["content"], second, "--style", styles, "--output", out,
                   "--weights", h5_files["legacy"], "--size", "32", "--steps", "2", "--optimizer", "adam",
                   "--log", log])
    assert status == 0
    assert sorted(p.name for p in out.iterdir()) == ["content_s.json", "content_s.png", "second_s.json",
                                                     "second_s.png"]  # each image with its run record
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted((r["job"], r["step"]) for r in records) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert records[0]["total"] != records[1]["total"]
    last = sorted(r["total"] for r in records if r["step"] == 1)
    assert f"final loss {last[0]:.4g} to {last[1]:.4g} over 2 jobs)" in capsys.readouterr().err


def test_output_folder_naming_for_one_job_and_clashing_names(h5_files, image_files, tmp_path, capsys):
    """--output an existing folder names a single job's image CONTENT_STYLE.png too, and a content named twice (two
    spellings of one file) is one job; two different files that would make the same output name are refused
    before any work."""
    out = tmp_path / "out"
    out.mkdir()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(image_files["content"].read_bytes())
    (tmp_path / "b" / "x.png").write_bytes(image_files["style"].read_bytes())
    base = ["--style", image_files["style"], "--output", out, "--weights", h5_files["legacy"], "--size", "32",
            "--steps", "2", "--optimizer", "adam", "--quiet"]
    assert main(["--content", tmp_path / "a" / "x.png", tmp_path / "b" / ".." / "a" / "x.png", *base]) == 0
    stem = f"x_{image_files['style'].stem}"
    assert sorted(p.name for p in out.iterdir()) == [f"{stem}.json", f"{stem}.png"]  # one job: its image, record
    for p in out.iterdir():
        p.unlink()
    assert main(["--content", tmp_path / "a", tmp_path / "b", *base]) == 1
    err = capsys.readouterr().err
    assert f"{out / ('x_' + image_files['style'].stem + '.png')}: would be written by two jobs" in err
    assert list(out.iterdir()) == []


def test_the_command_line_tells_a_style_set_from_several_jobs(h5_files, image_files, tmp_path, capsys):
    """--style A,B is one job blending two styles (CONTENT_A+B.png); --style A B two jobs; a blend with the wrong
    count is a usage error before any work."""
    from nst_jax.cli.command import main

    content, style = image_files["content"], image_files["style"]
    other = tmp_path / "other.png"
    other.write_bytes(content.read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    base = ["--content", content, "--weights", h5_files["legacy"], "--size", 32, "--steps", 2, "--optimizer",
            "adam", "--quiet", "--output", out]
    assert main([*base, "--style", f"{style},{other}", "--style-blend", "0.7,0.3"]) == 0
    assert sorted(p.name for p in out.glob("*.png")) == ["content_style+other.png"]
    assert main([*base, "--style", f"{style},", "--style-blend", "1"]) == 2  # an empty name: refused, not dropped
    assert "a style set (--style A,B) has an empty name" in capsys.readouterr().err
    assert main([*base, "--style", f"{style},{other}", "--style-blend", "1,1,1"]) == 2
    err = capsys.readouterr().err
    assert "--style-blend has 3 weights for 2 style images" in err and len(err.splitlines()) == 1
