"""Checkpoint files: a stopped batch's state (`transfer.BatchState`) and what the command line needs to continue it
(its arguments, the hashes of its inputs and weights), in one `.npz` written atomically. IO only.

Layout: `meta` (a JSON string: format, argv, cwd, hashes, the partial images written), `z`, `state_0` ... (the
optimiser state's leaves), `history_<term>`, `finite_steps`, `finite_image_<j>`, `scalars` ([first, scale, step]).
Read with `allow_pickle=False`: a checkpoint holds arrays and one string, never objects.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .files import atomic_path

FORMAT = "nst_jax checkpoint 1"
TERMS = ("content", "style", "tv", "total")


def save(path: str | os.PathLike, state, meta: dict[str, Any]) -> None:
    """Write `state` (a `transfer.BatchState`) and `meta` (JSON-able) to `path`, atomically."""
    arrays = {"meta": np.asarray(json.dumps({"format": FORMAT, **meta})), "z": state.z,
              "scalars": np.asarray([state.first, state.scale, state.step], np.int64),
              "finite_steps": np.asarray(state.finite_steps, np.int64)}
    arrays.update({f"state_{i}": leaf for i, leaf in enumerate(state.opt_state)})
    arrays.update({f"history_{k}": state.history[k] for k in TERMS})
    arrays.update({f"finite_image_{j}": image for j, image in enumerate(state.finite_images) if image is not None})
    with atomic_path(path, "the checkpoint") as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)


def load(path: str | os.PathLike):
    """(BatchState, meta) from a checkpoint written by `save`; an InputError naming `path` for anything else."""
    from .transfer import BatchState  # the record type only; transfer imports nothing from here

    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta = json.loads(str(arrays.pop("meta")))
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ValueError("not an nst_jax checkpoint")
        first, scale, step = (int(v) for v in arrays["scalars"])
        finite_steps = arrays["finite_steps"]
        leaves = [arrays[f"state_{i}"] for i in range(sum(k.startswith("state_") for k in arrays))]
        state = BatchState(first, scale, step, arrays["z"], leaves, {k: arrays[f"history_{k}"] for k in TERMS},
                           finite_steps, [arrays.get(f"finite_image_{j}") for j in range(len(finite_steps))])
    except FileNotFoundError:
        raise InputError(path, "no such checkpoint file") from None
    except IsADirectoryError:
        raise InputError(path, "is a folder, not a checkpoint file") from None
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as e:
        raise InputError(path, f"not a readable nst_jax checkpoint ({type(e).__name__}: {e})") from None
    return state, meta


def remove(paths) -> None:
    """Delete files that a finished run no longer needs (a checkpoint, partial images); missing ones are fine."""
    for path in paths:
        Path(path).unlink(missing_ok=True)
