"""Planning a command-line run before any work: the jobs and every path it writes checked, the inputs read,
sizes and memory of every process's share (`plan`), and the multi-host join."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np

from ..config import INIT_KEYWORDS, Config
from ..errors import InputError, UsageError
from ..io import images
from ..io.files import check_name, check_writable_target
from ..io.plot import check_matplotlib
from ..run.settings import layer_blend
from ..stops import STOPS
from .jobs import Job, image_paths, loaded_images, mask_paths, outputs_of, style_sets
from .options import PROG, option_message
from .paths import (
    check_derived_kept,
    check_distinct,
    check_frames_kept,
    check_inputs_kept,
    checkpoint_path,
    intermediate_path,
    is_file,
    location,
    partial_path,
    process_path,
    summary_path,
)


@contextlib.contextmanager
def joined_hosts(args: argparse.Namespace) -> Iterator[None]:
    """With --distributed or --coordinator: `jax.distributed.initialize` from the multi-host options (before
    anything else uses JAX), and `jax.distributed.shutdown` at the end, which waits for every process, so that the
    coordinator (process 0) outlives the others."""
    if not (args.distributed or args.coordinator is not None):
        yield
        return
    import threading
    import time

    import jax

    failed: list[BaseException] = []

    def join() -> None:  # in a thread: JAX's wait blocks in C++, where no stop signal could end it
        try:
            jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id,
                                       initialization_timeout=int(args.join_timeout) + 60)
        except BaseException as e:  # noqa: B036 (handed to the main thread)
            failed.append(e)

    joining = threading.Thread(target=join, name="nst_jax-join", daemon=True)
    joining.start()
    # JAX's own deadline (later) aborts the whole process with a C++ trace: this wait ends first, and a stop signal
    # interrupts it (errors.stop_on_signals)
    deadline = time.monotonic() + args.join_timeout
    while joining.is_alive() and time.monotonic() < deadline:
        joining.join(0.2)
        STOPS.check()
    if joining.is_alive():
        raise InputError(None, f"--distributed: no multi-process run to join within {args.join_timeout:g} s (is the "
                               f"coordinator {args.coordinator or 'detected'} up? --join-timeout sets the wait)")
    if failed:  # no cluster detected, coordinator unreachable, the timeout
        raise InputError(None, f"--distributed: could not join a multi-process run: "
                               f"{' '.join(str(failed[0]).split())[:300]}") from None
    try:
        yield
    finally:
        jax.distributed.shutdown()


def check_shares(jobs: list[Job], loaded: dict, config: Config, count: int) -> list[range]:
    """`plan_scales` (sizes, the memory preflight of every batch) for the jobs each of `count`
    processes will run, batched as that process will batch them. Every process checks every share, so all hosts of
    a multi-host run agree on bad input before any work. Returns the shares (`process_share` of each process);
    raises InputError."""
    from ..run.planning import jobs_per_program, plan_scales, process_share

    shares = [process_share(len(jobs), index, count) for index in range(count)]
    for share in shares:
        part = jobs[share.start:share.stop]
        if part:  # sizes and memory, named by file
            try:
                plan_scales([loaded[c].shape[:2] for c, _ in part],
                            [[loaded[s].shape[:2] for s in ss] for _, ss in part], config,
                            jobs_per_program(config, len(part)), names=part)
            except InputError as e:  # in the command line's words (--max-memory)
                raise type(e)(e.path, option_message(e.problem)) from None
    return shares


@dataclass
class Plan:
    """What this process runs, every input and output checked: jobs[j] = (content, styles) writes outputs[j];
    `first` is jobs[0]'s index among all `n_all` jobs of the command (several hosts split them)."""

    jobs: list[Job]
    outputs: list[Path]
    loaded: dict[Path, np.ndarray]
    first: int
    n_all: int
    log_path: Optional[Path]
    plot_path: Optional[Path]
    whose: str  # "process I of N, jobs A-B of M; " on several hosts, else ""
    checkpoint: Optional[Path]  # where a stop writes the checkpoint (None: a multi-process run writes none)
    init_image: Optional[np.ndarray] = None  # --init PATH, read as the inputs are (pixel limit, reduced)
    masks: Optional[object] = None  # the spatial control, read and checked (`run.inputs.Masks`)


def plan_run(args: argparse.Namespace, config: Config, index: int, count: int) -> Optional[Plan]:
    """Every check before any work: the jobs and their outputs, the log and plot, that no output overwrites an
    input or another output, the images (read), sizes and memory of every process's share (`check_shares`). None
    when this process has no jobs. Raises InputError."""
    from ..weights.download import candidate_paths

    all_jobs = list(itertools.product(image_paths(args.content), style_sets(args.style)))
    for _, ss in all_jobs:
        try:
            layer_blend(config, len(ss))  # --style-blend, --layer-styles and --style-masks fit the job's styles
        except ValueError as e:
            raise UsageError(None, option_message(str(e))) from None
    all_outputs = outputs_of(args, all_jobs)
    total_steps = sum(steps for _, steps in config.schedule)
    log_path = check_writable_target(process_path(Path(args.log), index, count)) if args.log else None
    inputs = {"content image": [c for c, _ in all_jobs], "style image": [s for _, ss in all_jobs for s in ss],
              "weights file": [Path(args.weights)] if args.weights else [], "mask": mask_paths(config),
              "init image": [Path(config.init)] if is_file(config.init) else []}
    plot_path = check_writable_target(process_path(Path(args.plot), index, count)) if args.plot else None
    if plot_path:
        check_matplotlib(plot_path)
    summaries = [summary_path(out) for out in all_outputs]
    partials = [partial_path(out) for out in all_outputs]
    ckpt = check_writable_target(checkpoint_path(args.output, len(all_jobs))) if count == 1 else None
    writes = {"output": all_outputs, "summary": summaries, "log": [log_path] if log_path else [],
              "plot": [plot_path] if plot_path else [], "partial image": partials, "checkpoint": [ckpt] if ckpt else []}
    check_distinct({"weights file": [] if args.weights else candidate_paths(config.weights_source), **writes})
    resumed = Path(args.resume) if args.resume else None  # the checkpoint read: an input, but rewritten by a stop
    check_inputs_kept(all_outputs + summaries + [p for p in (log_path, plot_path, ckpt) if p] + partials,
                      {**inputs, "checkpoint": [resumed] if resumed and (
                          ckpt is None or location(resumed) != location(ckpt)) else []})
    # a folder or a device of a record's or partial image's name, or a name too long, is refused now (their folder
    # is the output's, checked with it)
    for path in summaries + partials:
        check_name(path)
    frames = [intermediate_path(out, step) for out in all_outputs
              for step in range(args.save_every, total_steps, args.save_every)] if args.save_every else []
    if args.save_every:  # each frame's name; and no frame replaces an input or another file of the run
        for frame in frames:
            check_name(frame)
        check_frames_kept(all_outputs, args.save_every, total_steps, {**inputs, **writes})
    check_derived_kept(summaries, frames + partials, ckpt, (getattr(args, "argv", None), getattr(args, "cwd", None)),
                       resumed)
    loaded = loaded_images(all_jobs, config, args.max_input_pixels)
    init_image = None
    if config.init not in INIT_KEYWORDS:  # a start image: read now, before the weights (a folder, a device: refused)
        from ..run.planning import needed_sides

        init_image = images.load(config.init, args.max_input_pixels, needed_sides(config)[0])
    from ..run.inputs import load_masks

    masks = load_masks(config, args.max_input_pixels)
    mine = check_shares(all_jobs, loaded, config, count)[index]
    if not len(mine):
        if not args.quiet:
            print(f"{PROG}: process {index} of {count}: no jobs (there are {len(all_jobs)})", file=sys.stderr)
        return None
    share = f"job {mine.start}" if len(mine) == 1 else f"jobs {mine.start}-{mine.stop - 1}"
    return Plan(all_jobs[mine.start:mine.stop], all_outputs[mine.start:mine.stop], loaded, mine.start,
                 len(all_jobs), log_path, plot_path, f"process {index} of {count}, {share} of {len(all_jobs)}; "
                 * (count > 1), ckpt, init_image, masks)
