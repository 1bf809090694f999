"""`--resume CHECKPOINT`: the stopped run's arguments from its checkpoint (paths rebased to the folder it ran in),
and the checks that its inputs, weights and outputs are as they were."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional

from ..errors import InputError, OneLineParser
from .options import PROG, path_argument
from .paths import location


def check_unchanged(meta: dict, weights_sha256: str) -> None:
    """Refuse (InputError) to resume when the weights or an input image differ from those the checkpoint
    (meta["path"]) was made with: the result would match neither run."""
    from ..weights.download import file_digest

    if meta["weights_sha256"] != weights_sha256:
        raise InputError(meta["path"], "the weights file differs from the one this checkpoint was made with")
    for path, digest in meta["inputs"].items():
        path = Path(meta["cwd"], path)  # a relative path is from the folder the stopped run ran in
        if not path.is_file() or file_digest(path, "sha256") != digest:
            raise InputError(meta["path"], f"the input {path} is missing or changed since the checkpoint was made")


def check_log_kept(meta: dict, log: Optional[Path]) -> None:
    """Refuse (InputError) to resume into a log that is not the stopped run's own as it was at the stop (the
    checkpoint records its SHA-256): another run's log written there since, or any other file put at its name,
    would have the resumed steps appended to it."""
    from ..weights.download import file_digest

    recorded = meta.get("log_sha256")
    if log is None or not isinstance(recorded, str):
        return
    if not log.is_file() or log.is_symlink() or file_digest(log, "sha256") != recorded:
        raise InputError(meta["path"], f"the log {log} is missing or changed since the checkpoint was made (another "
                                       "run's log?); resuming would append to it: move that file back or away")


def check_not_replaced(meta: dict, outputs: list[Path]) -> None:
    """Refuse (InputError) to resume when an output the resumed run would write (`outputs`: those of the stopped
    batch's jobs and the later ones, which the stopped run never wrote) is not as it was at the stop: the checkpoint
    records each one's SHA-256, or that there was none (meta["outputs_sha256"]); a file put there since (another run
    with the same --output, a copy) would be replaced. Checkpoints without that record: refused when the output is
    newer than the checkpoint (meta["path"])."""
    from ..weights.download import file_digest

    recorded = meta.get("outputs_sha256")
    if isinstance(recorded, dict):
        was = {location(Path(meta["cwd"], p)): d for p, d in recorded.items() if isinstance(p, str)}
        changed = [out for out in outputs if (at := location(out)) in was
                   and (file_digest(out, "sha256") if out.is_file() else None) != was[at]]
    else:
        made = Path(meta["path"]).stat().st_mtime_ns
        changed = [out for out in outputs if out.is_file() and out.stat().st_mtime_ns > made]
    if changed:
        raise InputError(meta["path"], f"the output {changed[0]} was written after this checkpoint was made (by a "
                                       "later run, or put there); resuming would replace it: move that image away "
                                       "first, or delete the checkpoint")


META_KINDS = {"argv": "a list of strings", "cwd": "a string", "weights_sha256": "a string",
              "inputs": "a mapping of paths to hashes", "partials": "a list of strings"}


def check_meta(meta: dict) -> None:
    """ValueError unless `meta` (a checkpoint's, as the reporter writes it) holds what a resumed command reads, of
    the kinds written (META_KINDS): a tampered file gave KeyError and TypeError tracebacks."""
    strings = lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)  # noqa: E731
    kinds = {"argv": strings, "cwd": lambda v: isinstance(v, str), "weights_sha256": lambda v: isinstance(v, str),
             "inputs": lambda v: isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, str)
                                                             for k, x in v.items()),
             "partials": strings}
    for key, ok in kinds.items():
        if key not in meta:
            raise ValueError(f"its metadata has no {key!r}")
        if not ok(meta[key]):
            raise ValueError(f"its metadata's {key!r} is not {META_KINDS[key]}")


PATH_OPTIONS = ("content", "style", "output", "log", "plot", "weights", "init", "style_masks", "content_mask")


def resumed_args(argv: list[str], parser: argparse.ArgumentParser):
    """For `--resume CHECKPOINT [--quiet]`: the stopped run's arguments (paths made absolute from the folder it
    ran in) and the checkpoint's (state, meta); None without --resume. Other options with --resume: a usage error
    (exit 2); an unreadable checkpoint: InputError."""
    if not any(a == "--resume" or a.startswith("--resume=") for a in argv):
        return None
    only = OneLineParser(prog=PROG, add_help=False)
    only.add_argument("--resume", type=path_argument, required=True)
    only.add_argument("--quiet", action="store_true")
    known, extra = only.parse_known_args(argv)
    if extra:
        parser.error(f"--resume is given alone (or with --quiet): the run's options are in the checkpoint, got "
                     f"{' '.join(extra)}")
    from ..run import checkpoint

    state, meta = checkpoint.load(known.resume)
    args_lock = _hold(known.resume)
    try:
        check_meta(meta)
    except ValueError as e:
        raise InputError(known.resume, f"not a readable nst_jax checkpoint ({e})") from None
    meta["path"] = known.resume
    args = parser.parse_args(meta["argv"])
    def rebase(name: str, value):  # a relative path, from the folder the stopped run ran in
        if not isinstance(value, str) or (name == "init" and not Path(meta["cwd"], value).is_file()):
            return value  # not a path (--init content), or not given
        if name == "style" and "," in value and not Path(meta["cwd"], value).exists():  # a style set A,B
            return ",".join(str(Path(meta["cwd"], v)) for v in value.split(","))
        return str(Path(meta["cwd"], value))

    for name in (n for n in PATH_OPTIONS if hasattr(args, n)):  # settings not given are not attributes
        value = getattr(args, name)
        many = isinstance(value, (list, tuple))
        setattr(args, name, type(value)(rebase(name, v) for v in value) if many else rebase(name, value))
    args.argv, args.cwd, args.quiet = meta["argv"], meta["cwd"], args.quiet or known.quiet
    args.resume, args.resume_lock = known.resume, args_lock  # the lock lasts as long as the run (its process)
    return args, (state, meta)


def _hold(path: str):
    """An open file on the checkpoint `path` with an exclusive lock (flock), held until the process ends; an
    InputError when another process holds it: two runs resuming one checkpoint would both write the same outputs
    and append the same steps to one log."""
    import fcntl
    import os

    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        raise InputError(path, f"cannot open the checkpoint ({e.strerror or e})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise InputError(path, "another run is resuming this checkpoint now; wait for it to finish") from None
    return os.fdopen(fd, "rb")
