"""`python -m nst_jax.weights`: see `nst_jax.weights.cli`."""

from .cli import main

raise SystemExit(main())
