"""`python -m nst_jax`: see `nst_jax.cli`."""

from .cli import main

raise SystemExit(main())
