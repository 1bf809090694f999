"""nst_jax: Gatys et al. neural style transfer in JAX, Flax and Optax."""

from .compile_cache import enable_compilation_cache
from .config import Config, preset_config
from .transfer import Progress, Result, stylize
from .weights import Weights, load as load_weights

__all__ = [
    "Config", "Progress", "Result", "Weights", "enable_compilation_cache", "load_weights", "preset_config", "stylize",
]
__version__ = "0.1.0"
