"""Config takes settings as a notebook writes them (lists, comma-separated strings, numpy scalars) and stores its
declared types; wrong types are a TypeError naming the setting."""

from pathlib import Path

import numpy as np
import pytest

from nst_jax import Config


def test_sequences_strings_and_numpy_scalars_become_the_declared_types():
    given = Config(style_layers="relu1_1, relu3_1", content_layers=["relu4_2"], style_layer_weights="1,5e-1",
                   scale_sizes=np.array([32, 64]), scale_steps=[3, 4], adam_betas=[0.5, 0.9], size=np.int64(64),
                   lr=1, init=Path("start.png"))
    written = Config(style_layers=("relu1_1", "relu3_1"), content_layers=("relu4_2",), style_layer_weights=(1.0, 0.5),
                     scale_sizes=(32, 64), scale_steps=(3, 4), adam_betas=(0.5, 0.9), size=64, lr=1.0,
                     init="start.png")
    assert given == written and hash(given) == hash(written)  # hashable: no lists inside
    assert type(given.size) is int and type(given.lr) is float and type(given.scale_sizes[0]) is int
    assert given.replace(steps=7) == written.replace(steps=7)


@pytest.mark.parametrize("kw, message", [
    (dict(size="512"), "size must be an int, got '512'"),
    (dict(steps=2.5), "steps must be an int, got 2.5"),
    (dict(steps=True), "steps must be an int, got True"),
    (dict(style_weight="1e3"), "style_weight must be a float, got '1e3'"),
    (dict(scale_sizes=64), "scale_sizes must be a sequence of ints or a comma-separated string, got 64"),
    (dict(scale_sizes="64,128.5"), "scale_sizes must be ints separated by commas, got '64,128.5'"),
    (dict(style_layers=("relu1_1", 3)), "style_layers must be a str, got 3"),
])
def test_wrong_types_name_the_setting(kw, message):
    with pytest.raises(TypeError) as info:
        Config(**kw)
    assert str(info.value) == message
