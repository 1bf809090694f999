"""VGG19 weights: every supported file format, downloads, conversion, and the paper's normalisation.

Every loader returns a `Weights` (conv params + the preprocessing they were trained with). Command line:
`python -m nst_jax.weights {download,convert,info,normalize} ...` (see `nst_jax.weights.cli`).
"""

from .core import (
    CAFFE_BGR_MEAN,
    KERAS_FILENAME,
    KERAS_MD5,
    KERAS_URL,
    PREPROCESSINGS,
    TORCHVISION_MEAN,
    TORCHVISION_STD,
    WEIGHTS_DIR_ENV,
    Weights,
    default_path,
    deprocess,
    load_npz,
    preprocess,
    save_npz,
    weights_dir,
)
from .download import missing_weights_message
from .reader import as_weights, detect_format, load

__all__ = [
    "CAFFE_BGR_MEAN", "KERAS_FILENAME", "KERAS_MD5", "KERAS_URL", "PREPROCESSINGS", "TORCHVISION_MEAN",
    "TORCHVISION_STD", "WEIGHTS_DIR_ENV", "Weights", "as_weights", "default_path", "deprocess", "detect_format",
    "load", "load_npz", "missing_weights_message", "preprocess", "save_npz", "weights_dir",
]
