"""`python -m nst_jax.weights` convert / info / normalize, on generated files with random (not pretrained) values."""

import hashlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import smooth_image

from nst_jax import Config, stylize
from nst_jax import weights as weights_lib
from nst_jax.core import layers, vgg
from nst_jax.weights.cli import main
from nst_jax.weights.normalize import mean_activations


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("norm_images")
    for i, shape in enumerate([(40, 56), (48, 48), (36, 64)]):
        Image.fromarray(np.round(smooth_image(shape, 10 + i) * 255).astype(np.uint8)).save(folder / f"{i}.png")
    return folder


def test_convert_then_npz_gives_the_same_losses(h5_files, tmp_path, capsys):
    assert main(["convert", str(h5_files["nested"]), str(tmp_path / "w.npz")]) == 0
    config = Config(size=32, steps=3, optimizer="adam", init="content")
    content, style = smooth_image((24, 32), 5), smooth_image((32, 32), 6)
    a = stylize(content, style, h5_files["nested"], config).history
    b = stylize(content, style, tmp_path / "w.npz", config).history
    for term in a:
        np.testing.assert_array_equal(a[term], b[term])


def test_info_prints_format_layers_count_preprocessing_hash(h5_files):
    proc = subprocess.run([sys.executable, "-m", "nst_jax.weights", "info", str(h5_files["legacy"])],
                          capture_output=True, text=True, check=True)
    out = proc.stdout
    assert "format:        Keras HDF5" in out and "preprocessing: caffe" in out
    assert "parameters:    20,024,384" in out
    assert "conv3_1  kernel (3, 3, 128, 256)" in out
    assert hashlib.sha256(h5_files["legacy"].read_bytes()).hexdigest() in out
    assert proc.stderr == ""  # no runpy double-import warning


def test_convert_refuses_bad_source_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"garbage")
    assert main(["convert", str(bad), str(tmp_path / "w.npz")]) == 1
    err = capsys.readouterr().err
    assert "not a weights file" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "w.npz").exists()


@pytest.mark.slow  # a long run: CI runs it (pytest -m slow), the README's command leaves it out
def test_normalize_gives_unit_mean_activations_and_keeps_relu_pattern(h5_files, image_folder, tmp_path):
    assert main(["normalize", str(h5_files["legacy"]), str(tmp_path / "n.npz"), "--images", str(image_folder),
                 "--size", "64"]) == 0
    original, normalised = weights_lib.load(h5_files["legacy"]), weights_lib.load(tmp_path / "n.npz")
    assert normalised.preprocess == "caffe"
    from nst_jax.io import images

    pics = [images.resize_longer_side(images.load(p), 64) for p in sorted(image_folder.iterdir())]
    before, after = mean_activations(original, pics), mean_activations(normalised, pics)
    for conv in layers.CONV_NAMES:
        alive = before[conv] > 0
        np.testing.assert_allclose(after[conv][alive], 1.0, atol=1e-3)
        assert np.all(after[conv][~alive] == 0)
    relus = [c.replace("conv", "relu") for c in layers.CONV_NAMES]
    x = weights_lib.preprocess(jnp.asarray(pics[0])[None], "caffe")
    fa = vgg.features(jax.device_put(original.params), x, relus)
    fb = vgg.features(jax.device_put(normalised.params), x, relus)
    for conv, relu in zip(layers.CONV_NAMES, relus):
        a, b = np.asarray(fa[relu]), np.asarray(fb[relu])
        scale = np.where(before[conv] > 0, before[conv], 1.0)
        strong = np.abs(a) > 1e-3 * np.abs(a).max()  # away from float32 ties at the ReLU's kink
        assert np.array_equal(a[strong] > 0, b[strong] > 0), conv
        np.testing.assert_allclose(b, a / scale, rtol=2e-3, atol=1e-4 * np.abs(b).max())


def test_normalize_refuses_images_too_small_for_the_last_block(h5_files, image_folder, tmp_path, capsys):
    """Before: --size 8 (or 0) wrote a half-normalised file (conv5 filters saw no positions) with exit 0."""
    dst = tmp_path / "n.npz"
    for size in ("8", "0"):
        with pytest.raises(SystemExit) as info:
            main(["normalize", str(h5_files["legacy"]), str(dst), "--images", str(image_folder), "--size", size])
        assert info.value.code == 2 and "--size must be at least 16" in capsys.readouterr().err
    assert main(["normalize", str(h5_files["legacy"]), str(dst), "--images", str(image_folder), "--size", "20"]) == 1
    err = capsys.readouterr().err
    assert "too small: every filter up to conv5_4 needs at least 16 px" in err and not dst.exists()


def test_info_into_a_closed_pipe_stops_quietly(h5_files):
    """`weights info FILE | head`, where the reader has gone before the report is printed (here `true`, which
    reads nothing): before, exit status 1 and "Broken pipe" on stderr; now a quiet exit 0."""
    command = f"{sys.executable} -m nst_jax.weights info {h5_files['legacy']} | true; echo ${{PIPESTATUS[0]}}"
    proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
    assert (proc.stdout.strip(), proc.stderr) == ("0", "")


def test_normalize_reads_a_huge_image_in_bounded_memory(h5_files, tmp_path):
    """Issue 49, item 10: a 12 KB 9999x9999 PNG given to `weights normalize --images` was decoded whole as float32
    (2.8 GB peak). It is reduced while it is decoded, to what --size needs; measured in a fresh process."""
    import subprocess
    import sys

    from PIL import Image

    folder = tmp_path / "pics"
    folder.mkdir()
    Image.new("RGB", (9999, 9999), (120, 80, 200)).save(folder / "huge.png")
    assert (folder / "huge.png").stat().st_size < 1_000_000
    # VmHWM: this process's own peak (ru_maxrss would start at the parent's size, which a fork and exec carry over)
    script = ("import sys\nfrom nst_jax.weights.cli import main\n"
              "status = main(sys.argv[1:])\n"
              "peak = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
              "print(status, peak)\n")
    out = subprocess.run([sys.executable, "-c", script, "normalize", str(h5_files["legacy"]), str(tmp_path / "n.npz"),
                          "--images", str(folder), "--size", "64"], capture_output=True, text=True, timeout=300)
    status, peak_kib = out.stdout.split()[-2:]
    assert status == "0" and (tmp_path / "n.npz").is_file(), out.stderr[-2000:]
    assert int(peak_kib) < 1_500_000, f"peak {int(peak_kib) // 1024} MiB"
