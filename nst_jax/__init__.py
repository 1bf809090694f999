"""nst_jax: Gatys et al. neural style transfer in JAX, Flax and Optax."""

from .config import Config
from .transfer import Progress, Result, stylize
from .weights import Weights, load as load_weights

__all__ = ["Config", "Progress", "Result", "Weights", "load_weights", "stylize"]
__version__ = "0.1.0"
