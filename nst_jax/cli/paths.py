"""The no-overwrite rules of the command line: where each file of a run goes (frames, partial images, the
checkpoint, run records, per-process logs), and the checks that no file the run writes is an input or another of
its files. Every path is checked while planning, before any work (`plan.plan`)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Optional, Sequence

from ..errors import InputError, UsageError
from .options import PROG


def process_path(path: Path, index: int, count: int) -> Path:
    """A per-process name for a file every process would otherwise write: LOG.processI.SUFFIX (I = index)."""
    return path if count == 1 else path.with_name(f"{path.stem}.process{index}{path.suffix}")


def intermediate_path(output: Path, step: int) -> Path:
    """The --save-every frame of `output` at `step`: OUTPUT_STEM.NNNNN.SUFFIX beside it."""
    return output.with_name(f"{output.stem}.{step:05d}{output.suffix}")


def location(path: Path) -> Path:
    """The file `path` names, by any spelling of its folder (the folder resolved, the name kept: a write replaces
    a link of that name, not its target)."""
    return resolved(path.absolute().parent) / path.name


def resolved(path: Path) -> Path:
    """`path.resolve()`, with a symlink loop (pathlib's RuntimeError, or ELOOP) as a one-line InputError."""
    try:
        return path.resolve()
    except (RuntimeError, OSError) as e:
        why = e.strerror if isinstance(e, OSError) else "a symlink loop"
        raise InputError(path, f"cannot follow this path ({why})") from None


def frame_step(path: Path, output: Path) -> Optional[int]:
    """The step N if `path` names the file that `intermediate_path(output, N)` writes (same folder, by any
    spelling of it), else None."""
    match = re.fullmatch(re.escape(output.stem) + r"\.(\d{5,})" + re.escape(output.suffix), path.name)
    if not match or location(path).parent != location(output).parent:
        return None
    step = int(match.group(1))
    return step if intermediate_path(output, step).name == path.name else None


def check_frames_kept(outputs: Sequence[Path], save_every: int, total_steps: int,
                      files: dict[str, Sequence[Path]]) -> None:
    """Refuse (InputError) a --save-every run whose frames (steps N = save_every, 2 save_every, ... below
    `total_steps`) would be written over one of `files` (paths by role: the inputs, the log), e.g. a content image
    named shot.00010.png beside --output shot.png."""
    for role, paths in files.items():
        for path in paths:
            for out in outputs:
                step = frame_step(path, out)
                if step is not None and 0 < step < total_steps and step % save_every == 0:
                    raise InputError(path, f"the --save-every frame of step {step} of {out} would overwrite this "
                                           f"{role}; choose another --output or --save-every")


def partial_path(output: Path) -> Path:
    """Where a stopped run leaves a job's current image: OUTPUT_STEM.partial.SUFFIX beside the output."""
    return output.with_name(f"{output.stem}.partial{output.suffix}")


def checkpoint_path(output: str, n_jobs: int) -> Path:
    """Where a stopped run leaves its checkpoint: OUTPUT_STEM.checkpoint.npz beside a one-job output, or
    nst_jax.checkpoint.npz in the --output folder."""
    output_path = Path(output)
    if n_jobs == 1 and not output_path.is_dir():
        return output_path.with_name(f"{output_path.stem}.checkpoint.npz")
    return output_path / "nst_jax.checkpoint.npz"


def summary_path(output: Path) -> Path:
    """The run record written next to `output`: OUTPUT_STEM.json."""
    return output.with_suffix(".json")


def check_distinct(writes: dict[str, Sequence[Path]]) -> None:
    """Refuse (UsageError) a run two of whose files (paths by what they are: output, summary, log, plot) are one
    file, e.g. --log out.png with --output out.png, where one write would silently replace the other."""
    seen: dict[Path, str] = {}
    for what, paths in writes.items():
        for path in paths:
            key = location(path)
            if key in seen:
                raise UsageError(path, f"is both the {seen[key]} and the {what}; give them distinct names")
            seen[key] = what


def check_inputs_kept(writes: Sequence[Path], inputs: dict[str, Sequence[Path]]) -> None:
    """Refuse (InputError) a run that would write over one of its input files (`inputs`: paths by role), such as
    --output naming the content image, or --log naming the --init image."""
    existing = {resolved(p): (role, p) for role, paths in inputs.items() for p in paths if p.is_file()}
    for path in writes:
        if (where := resolved(path)) in existing:
            role, given = existing[where]
            raise InputError(path, f"would overwrite the {role} {given}; choose another output")


def check_derived_kept(summaries: Sequence[Path], images_: Sequence[Path], ckpt: Optional[Path],
                       command: tuple, resumed: Optional[Path] = None) -> None:
    """Refuse (InputError) a run that would replace, at a name it derives from --output, a file it did not make:
    `summaries` (OUTPUT_STEM.json) must be nst_jax run records if they exist, `images_` (the --save-every frames
    and OUTPUT_STEM.partial.png) images nst_jax wrote, and a checkpoint at `ckpt` this `command`'s (argv, cwd) or
    the one being resumed (`resumed`): a stop writes there. The files the user names (--output, --log, --plot)
    are replaced as any program's outputs are."""
    from ..io.images import check_ours_to_replace
    from ..run.checkpoint import read_meta

    for path in summaries:
        if os.path.lexists(path) and not _is_run_record(path):
            raise InputError(path, "exists and is not an nst_jax run record; this run writes its output's record "
                                   "there: move that file away or choose another --output")
    for path in images_:
        check_ours_to_replace(path, "this run may write a frame or its current image there: move that file away or "
                                    "choose another --output")
    if ckpt is None or not os.path.lexists(ckpt) or (resumed is not None and location(resumed) == location(ckpt)):
        return
    meta = read_meta(ckpt)
    if meta is None:
        raise InputError(ckpt, "exists and is not an nst_jax checkpoint; a stop would write this run's checkpoint "
                               "there: move that file away or choose another --output")
    if checkpoint_command(meta) != command:
        raise InputError(ckpt, f"holds a stopped run of another command; resume it ({PROG} --resume {ckpt}) or "
                               "delete it before running this one")


def checkpoint_command(meta: dict) -> tuple:
    """A checkpoint's command: its arguments and the folder it ran in (two checkpoints of one command match)."""
    return meta.get("argv"), meta.get("cwd")


def _is_run_record(path: Path) -> bool:
    """Whether `path` is a regular file holding an nst_jax run record (JSON with its settings and environment)."""
    try:
        if not path.is_file() or path.is_symlink() or path.stat().st_size > RECORD_MAX_BYTES:
            return False
        record = json.loads(path.read_text())
        return isinstance(record, dict) and "settings" in record and "nst_jax" in record.get("environment", {})
    except (OSError, ValueError, TypeError):
        return False


RECORD_MAX_BYTES = 2**24  # a run record is a few kB; anything larger is not one


def is_file(value) -> bool:
    """Whether a setting that may name a file (--init: a path or a keyword) names an existing one."""
    return isinstance(value, str) and Path(value).is_file()
