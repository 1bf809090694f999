"""Tests of `nst_jax.core.pixels`: the weights' pixel conventions by hand (Keras' "caffe" mode; torchvision's
normalisation constants)."""

import jax.numpy as jnp
import numpy as np
import pytest

from nst_jax.core import pixels


def test_caffe_preprocessing_hand_values():
    red = jnp.zeros((1, 1, 3)).at[..., 0].set(1.0)  # pure red RGB
    np.testing.assert_allclose(pixels.preprocess(red, "caffe")[0, 0], [-103.939, -116.779, 255 - 123.68],
                               rtol=1e-6)


def test_torchvision_preprocessing_hand_values():
    grey = jnp.full((1, 1, 3), 0.5)
    expected = [(0.5 - 0.485) / 0.229, (0.5 - 0.456) / 0.224, (0.5 - 0.406) / 0.225]
    np.testing.assert_allclose(pixels.preprocess(grey, "torchvision")[0, 0], expected, rtol=1e-6)


def test_deprocess_hand_values():
    """The network input of pure green under each convention, worked out by hand, gives pure green back."""
    caffe_green = jnp.asarray([[[-103.939, 255 - 116.779, -123.68]]])  # BGR, minus the means
    torch_green = jnp.asarray([[[-0.485 / 0.229, (1 - 0.456) / 0.224, -0.406 / 0.225]]])
    for x, convention in ((caffe_green, "caffe"), (torch_green, "torchvision")):
        np.testing.assert_allclose(pixels.deprocess(x, convention)[0, 0], [0.0, 1.0, 0.0], atol=1e-6)


@pytest.mark.parametrize("fn", [pixels.preprocess, pixels.deprocess])
def test_an_unknown_convention_names_the_known_ones(fn):
    with pytest.raises(ValueError, match="unknown preprocessing 'bgr'; expected one of"):
        fn(jnp.zeros((1, 1, 3)), "bgr")
