"""Tests of `nst_jax.run.checkpoint`: a damaged or tampered checkpoint is one line, read without trusting it."""

import io
import json
import zipfile

import numpy as np
import pytest
from conftest import main, stopped_run


def _meta_changed(arrays, **changes):
    meta = json.loads(str(arrays["meta"]))
    for key, value in changes.items():
        if value is KeyError:
            meta.pop(key)
        else:
            meta[key] = value
    return {**arrays, "meta": np.asarray(json.dumps(meta))}


def _nan_in(arrays, name):
    a = arrays[name].copy()
    a.reshape(-1)[0] = np.nan
    return {**arrays, name: a}


def _resume_changed(h5_files, image_files, tmp_path, capsys, change):
    """Stop a run, rewrite its checkpoint's arrays with `change`, resume it (which must fail with exit 1): the
    checkpoint's path and what the resume wrote on stderr."""
    _, ckpt = stopped_run(h5_files, image_files, tmp_path)
    capsys.readouterr()
    with np.load(ckpt) as data:
        arrays = change({k: data[k] for k in data.files})
    np.savez(ckpt, **arrays)
    assert main(["--resume", ckpt]) == 1
    return ckpt, capsys.readouterr().err


@pytest.mark.parametrize("change, message", [
    (lambda a: {**a, "z": a["z"][:, :, :-1]}, "the checkpoint does not fit this run: its images are"),
    (lambda a: {**a, "history_total": a["history_total"][:1]}, "loss history does not have one row per step"),
    (lambda a: {**a, "state_0": np.asarray([b"x"])}, "optimiser state is not arrays"),
    (lambda a: {**a, "scalars": np.asarray([0, 0, 1000])}, "does not have one row per step"),  # step past the end
])
def test_a_damaged_checkpoint_is_one_line(h5_files, image_files, tmp_path, capsys, change, message):
    """Found by a hostile trial: a checkpoint with a wrong-shaped variable, a short history or a bytes state gave a
    traceback, and a step past the run's end was accepted. Each is now one line, exit 1, nothing written."""
    ckpt, err = _resume_changed(h5_files, image_files, tmp_path, capsys, change)
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("change, message", [
    (lambda a: _meta_changed(a, argv=KeyError), "its metadata has no 'argv'"),  # item 9: KeyError tracebacks
    (lambda a: _meta_changed(a, weights_sha256=KeyError), "its metadata has no 'weights_sha256'"),
    (lambda a: _meta_changed(a, inputs=["c.png"]), "its metadata's 'inputs' is not a mapping of paths to hashes"),
    (lambda a: _meta_changed(a, cwd=None), "its metadata's 'cwd' is not a string"),
    (lambda a: _nan_in(a, "z"), "its variables hold NaN where the loss was finite"),  # item 17: resumed, exit 0
    (lambda a: _nan_in(a, "state_1"), "its optimiser state hold NaN where the loss was finite"),
])
def test_a_tampered_checkpoint_is_one_line_and_writes_nothing(h5_files, image_files, tmp_path, capsys, change,
                                                              message):
    """Issue 49, items 9 and 17: a checkpoint whose metadata lacks argv or weights_sha256, has inputs as a list or
    cwd null gave KeyError, AttributeError or TypeError tracebacks; one with NaN in the image or the optimiser state
    (Adam's first moment, state_1) beside a finite loss resumed and exited 0 with a frozen loss."""
    ckpt, err = _resume_changed(h5_files, image_files, tmp_path, capsys, change)
    assert f"{ckpt}: not a readable nst_jax checkpoint ({message}" in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "o.png").exists()


def test_a_checkpoint_claiming_a_huge_image_is_refused_before_reading_it(h5_files, image_files, tmp_path, capsys):
    """Issue 49, item 10: a 1.3 MB checkpoint whose image array claimed 9000x9000 was allocated (1.26 GB) before
    its refusal. The sizes are checked from the .npy headers first; compressed arrays (save never writes them) are
    refused too."""
    _, ckpt = stopped_run(h5_files, image_files, tmp_path)
    with np.load(ckpt) as data:
        arrays = {k: data[k] for k in data.files}
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (1, 1, 9000, 9000, 3)})
    with zipfile.ZipFile(ckpt, "w") as archive:  # every array as save stores it, but z's header lies
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, array)
            archive.writestr(f"{name}.npy", header.getvalue() + bytes(1_000_000) if name == "z" else buffer.getvalue())
    capsys.readouterr()
    assert main(["--resume", ckpt]) == 1
    err = capsys.readouterr().err
    assert "its array z.npy claims 972000000 bytes in a member of" in err and len(err.strip().splitlines()) == 1, err
    with zipfile.ZipFile(ckpt, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, array)
            archive.writestr(f"{name}.npy", buffer.getvalue())
    assert main(["--resume", ckpt]) == 1
    assert "is compressed; nst_jax stores checkpoints uncompressed" in capsys.readouterr().err
