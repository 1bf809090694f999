"""Tests of `nst_jax.presets`: the presets and their weights note."""



def test_a_preset_says_when_the_weights_use_another_pixel_convention():
    from nst_jax.presets import preset_weights_note

    note = preset_weights_note("pytorch-tutorial", "caffe")
    assert note.startswith("preset pytorch-tutorial was tuned for torchvision weights (torchvision pixels)")
    assert "--weights-source torchvision" in note and "\n" not in note
    assert preset_weights_note("pytorch-tutorial", "torchvision") is None
    assert preset_weights_note("jcjohnson", "caffe") is None and "keras" in preset_weights_note("jcjohnson",
                                                                                              "torchvision")
    assert preset_weights_note("gatys", "torchvision") is None and preset_weights_note(None, "caffe") is None


def test_the_command_line_prints_the_presets_note_once_and_runs(h5_files, image_files, tmp_path, capsys):
    """Issue 38 item 8: pytorch-tutorial (tuned for torchvision's VGG19) with Caffe-convention weights: one
    warning line, and the run goes on."""
    from nst_jax.cli.command import main

    out = tmp_path / "o.png"
    assert main(["--content", image_files["content"], "--style", image_files["style"], "--output", out,
                 "--weights", h5_files["legacy"], "--preset", "pytorch-tutorial", "--size", 32, "--steps", 2]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(err) == 1 and "preset pytorch-tutorial was tuned for torchvision weights" in err[0] and out.exists()
