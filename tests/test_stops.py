"""Tests of `nst_jax.stops`: stop signals become one clean stop, whenever they come."""

import os
import subprocess
import sys

import pytest
from conftest import main


def test_a_stop_signal_whose_exception_was_swallowed_still_stops_the_run(h5_files, image_files, tmp_path,
                                                                          monkeypatch, capsys):
    """A signal's exception raised inside a callback that swallows exceptions (JAX's garbage-collection callback
    prints "Exception ignored" and goes on) used to be lost: the run finished and exited 0. The signal is
    remembered and acted on at the next safe point: exit 143, no image written."""
    import signal
    import time

    from nst_jax.run import loop
    from nst_jax.stops import Interrupted

    real = loop.optimize_batches

    def optimize_batches(*a, **k):
        try:  # as a callback that swallows the handler's exception
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.5)
        except Interrupted:
            pass
        return real(*a, **k)

    monkeypatch.setattr(loop, "optimize_batches", optimize_batches)
    out = tmp_path / "o.png"
    code = main(["--content", image_files["content"], "--style", image_files["style"], "--output", out,
                 "--weights", h5_files["legacy"], "--size", 32, "--steps", 4, "--optimizer", "adam", "--quiet"])
    assert code == 143 and not out.exists()
    said = capsys.readouterr().err.strip()
    ckpt, partial = tmp_path / "o.checkpoint.npz", tmp_path / "o.partial.png"
    assert said == (f"python -m nst_jax: interrupted by SIGTERM; the current image {partial} (step 4) and the "
                    f"checkpoint {ckpt} were written; continue with: python -m nst_jax --resume {ckpt}; {out} not "
                    "written by this run")
    assert sorted(p.name for p in tmp_path.iterdir()) == [ckpt.name, partial.name]


@pytest.mark.parametrize("after", [0.5, 1.2])
def test_ctrl_c_while_starting_is_one_line(h5_files, image_files, tmp_path, after):
    """SIGINT during the imports and set-up: one line and exit status 130, no traceback, whenever it comes. Before:
    a KeyboardInterrupt traceback from inside numpy's or JAX's import, or (inside JAX's garbage-collection
    callback) "Exception ignored" and a run that went on."""
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "nst_jax", "--content", image_files["content"], "--style",
                             image_files["style"], "--output", tmp_path / "o.png", "--weights", h5_files["legacy"],
                             "--size", "64", "--steps", "200", "--quiet"], stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NST_JAX_HUGE_PAGES": "0"})
    time.sleep(after)  # python is starting or importing (the CLI's imports take a second or more)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "interrupted" in err
    assert not (tmp_path / "o.png").exists()
