"""Tests of `nst_jax.core.layers`: VGG19's layers as data, against the published network (FACTS.md)."""

import numpy as np

from nst_jax.core import layers


def test_layer_names_and_shapes():
    assert len(layers.CONV_NAMES) == 16 and len(layers.LAYER_NAMES) == 32
    assert layers.CONV_NAMES[:3] == ("conv1_1", "conv1_2", "conv2_1") and layers.CONV_NAMES[-1] == "conv5_4"
    assert layers.CONV_SHAPES["conv1_1"] == (3, 3, 3, 64) and layers.CONV_SHAPES["conv3_1"] == (3, 3, 128, 256)
    total = sum(np.prod(s) + s[-1] for s in layers.CONV_SHAPES.values())
    assert total == 20_024_384  # the parameter count of Keras' VGG19 notop file (FACTS.md)
