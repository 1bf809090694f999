"""The SHA-256 of the program a default run compiles, to check that a change leaves the default path alone.

    python benchmarks/default_program.py [--size 64]

Lowers one default chunk of steps (`steps.run_chunk` with `Config()`'s settings, a 3:4 content at --size, random
weights) to StableHLO text, strips the source locations (which move with every edit) and prints its SHA-256. Run
it at two commits (e.g. `git worktree add /tmp/old REV` and `PYTHONPATH=/tmp/old python
benchmarks/default_program.py`): the same hash means the same program, so the same time per step.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import nst_jax
from nst_jax import Config
from nst_jax.core.objective import cast_params, compute_targets, to_variable
from nst_jax.core.steps import run_chunk, start_states
from nst_jax.reference.bench import machine, table
from nst_jax.reference.random_vgg import random_params
from nst_jax.run.settings import hyperparams, loss_spec, loss_weights


def program_text(size: int) -> str:
    """The StableHLO of one default chunk at a (3 size / 4) x size content, without source locations."""
    config = Config(size=size)
    spec = loss_spec(config, "caffe")
    params = cast_params(jax.tree.map(np.asarray, random_params(jax.random.key(0))), spec)
    content = to_variable(jnp.full((1, 3 * size // 4, size, 3), 0.5), spec)
    style = to_variable(jnp.full((1, size, size, 3), 0.4), spec)
    targets = jax.tree.map(lambda a: a[None], compute_targets(params, content, style, spec))
    hyper = hyperparams(config)
    z = content[None]
    state = start_states(z, hyper, config.optimizer, config.lbfgs_memory)
    text = run_chunk.lower(z, state, params, targets, loss_weights(config), hyper, spec=spec,
                           optimizer=config.optimizer, box=config.box_mode, memory=config.lbfgs_memory,
                           length=config.chunk_size).as_text()
    return re.sub(r"#loc.*\n", "", re.sub(r" loc\([^\n]*", "", text))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args(argv)
    package = nst_jax.__file__
    commit = subprocess.run(["git", "-C", str(Path(package).parent), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "?"
    print(f"{machine()}; nst_jax from {package}\n")
    digest = hashlib.sha256(program_text(args.size).encode()).hexdigest()
    print(table(["nst_jax's commit", "size", "default chunk's StableHLO SHA-256"], [[commit, args.size, digest]]))


if __name__ == "__main__":
    main()
