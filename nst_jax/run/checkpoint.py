"""Checkpoint files: a stopped batch's state (`records.BatchState`) and what the command line needs to continue it
(its arguments, the hashes of its inputs and weights), in one `.npz` written atomically. IO only.

Layout: `meta` (a JSON string: format, argv, cwd, hashes, the partial images written), `z`, `state_0` ... (the
optimiser state's leaves), `history_<term>`, `finite_steps`, `finite_image_<j>`, `scalars` ([first, scale, step]).
Read with `allow_pickle=False`: a checkpoint holds arrays and one string, never objects.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..core.objective import TERMS
from ..errors import InputError
from ..io.files import atomic_path, check_regular_file
from .records import BatchState

FORMAT = "nst_jax checkpoint 1"


def save(path: str | os.PathLike, state, meta: dict[str, Any]) -> None:
    """Write `state` (a `records.BatchState`) and `meta` (JSON-able) to `path`, atomically."""
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
    check_regular_file(path)
    try:
        _check_sizes(path)
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta = _meta(arrays.pop("meta"))
        _check_layout(arrays)
        _check_values(arrays)
        first, scale, step = (int(v) for v in arrays["scalars"])
        finite_steps = arrays["finite_steps"]
        leaves = [arrays[f"state_{i}"] for i in range(sum(k.startswith("state_") for k in arrays))]
        state = BatchState(first, scale, step, arrays["z"], leaves, {k: arrays[f"history_{k}"] for k in TERMS},
                           finite_steps, [arrays.get(f"finite_image_{j}") for j in range(len(finite_steps))])
    except FileNotFoundError:
        raise InputError(path, "no such checkpoint file") from None
    except IsADirectoryError:
        raise InputError(path, "is a folder, not a checkpoint file") from None
    except (OSError, ValueError, KeyError, TypeError, EOFError, IndexError, OverflowError, NotImplementedError,
            RuntimeError, struct.error, zipfile.BadZipFile) as e:  # what a damaged zip or .npy raises
        why = "not an .npz of arrays" if "pickle" in str(e) or isinstance(e, zipfile.BadZipFile) else str(e)
        raise InputError(path, f"not a readable nst_jax checkpoint ({why})") from None
    return state, meta


def _meta(text: np.ndarray) -> dict:
    """The metadata from a checkpoint's `meta` array (one JSON string); ValueError unless it is an nst_jax
    checkpoint's."""
    meta = json.loads(str(text))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError("not an nst_jax checkpoint")
    return meta


def _check_sizes(path) -> None:
    """ValueError unless every array of the .npz at `path` is stored uncompressed (as `save` writes it) and claims
    no more bytes than its member holds: checked from the headers, before any array is read (a 1.3 MB file
    claiming a 9000x9000 image was allocated, 1.26 GB, before its refusal)."""
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.compress_type != zipfile.ZIP_STORED:
                raise ValueError(f"its array {info.filename} is compressed; nst_jax stores checkpoints uncompressed")
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(member)  # the header alone
            claimed = math.prod(shape) * dtype.itemsize
            if claimed > info.file_size:
                raise ValueError(f"its array {info.filename} claims {claimed} bytes in a member of {info.file_size}")


def _check_values(arrays: dict[str, np.ndarray]) -> None:
    """ValueError if a job's variables or optimiser state hold NaN while its last loss is finite: a run that
    diverged stops with NaN and a NaN loss, so NaN beside a finite loss was never written by `save` (resuming it
    would run to the end with a frozen loss)."""
    totals = arrays["history_total"]
    finite_loss = np.isfinite(totals[-1]) if len(totals) else np.ones(arrays["finite_steps"].shape, bool)
    for name in ["z"] + sorted(k for k in arrays if k.startswith("state_")):
        a = arrays[name]
        if a.dtype.kind != "f":
            continue
        bad = np.isnan(a.reshape(a.shape[0], -1)).any(axis=1)[:finite_loss.shape[0]]
        if (bad & finite_loss).any():
            what = "variables" if name == "z" else "optimiser state"
            raise ValueError(f"its {what} hold NaN where the loss was finite (job {int(np.argmax(bad & finite_loss))})")


def _check_layout(arrays: dict[str, np.ndarray]) -> None:
    """ValueError unless the arrays are laid out as `save` writes them: numbers of the right kinds and shapes."""
    numeric = lambda a: a.dtype.kind in "biuf"  # noqa: E731
    scalars, z, finite = arrays["scalars"], arrays["z"], arrays["finite_steps"]
    history = [arrays[f"history_{k}"] for k in TERMS]
    if scalars.shape != (3,) or scalars.dtype.kind not in "iu" or scalars.min() < 0:
        raise ValueError("its first job, scale and step must be three integers >= 0")
    if z.dtype.kind != "f" or z.ndim != 5 or z.shape[1] != 1 or z.shape[-1] != 3:
        raise ValueError(f"its variables have shape {z.shape}, not [jobs, 1, H, W, 3]")
    jobs = finite.shape[0] if finite.ndim == 1 else -1
    if finite.dtype.kind not in "iu" or not 0 < jobs <= z.shape[0]:
        raise ValueError("its per-job steps do not match its variables")
    if any(h.dtype.kind != "f" or h.shape != (int(scalars[2]), jobs) for h in history):
        raise ValueError("its loss history does not have one row per step and one column per job")
    if not all(numeric(a) and a.ndim >= 1 and a.shape[0] == z.shape[0] for k, a in arrays.items()
               if k.startswith("state_")):
        raise ValueError("its optimiser state is not arrays with one entry per job")


def read_meta(path: str | os.PathLike):
    """The metadata of the nst_jax checkpoint at `path` (only that is read), or None if `path` is not a regular file
    holding one."""
    try:
        check_regular_file(path)
        if not Path(path).is_file():
            return None
        with np.load(path, allow_pickle=False) as data:
            return _meta(data["meta"])
    except Exception:  # anything unreadable is not one (and is left alone)
        return None


def remove(paths) -> None:
    """Delete files that a finished run no longer needs (a checkpoint, partial images); missing ones are fine."""
    for path in paths:
        Path(path).unlink(missing_ok=True)
