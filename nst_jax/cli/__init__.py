"""The command line, `python -m nst_jax`: `options` (the parser, built from `Config`), `command` (plan, run,
report), `hugepages` (the restart before JAX is imported). Importing this package imports nothing else."""
