"""What a run shows and writes besides computing: the progress bar, the streamed log, the --save-every frames, each
job's image and run record, the plot, the closing line, and on a stop the partial images and the checkpoint."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, NoReturn, Optional

import numpy as np

from ..config import Config
from ..errors import InputError
from ..io import images, record
from ..io.files import atomic_path, streamed_file
from ..io.plot import plot_losses, term_weights
from ..stops import STOPS, Interrupted
from .jobs import mask_paths
from .options import PROG
from .paths import checkpoint_command, intermediate_path, is_file, location, partial_path, summary_path
from .plan import Plan


def progress_bar(total: int, quiet: bool):
    from tqdm import tqdm

    # disable=None: shown on a terminal, hidden when stderr is not one (CI logs, pipes).
    return tqdm(total=total, unit="step", disable=True if quiet else None, dynamic_ncols=True, file=sys.stderr)


class Reporter:
    """What a run shows and writes besides computing: the progress bar, the log (streamed), the --save-every frames,
    each job's image and run record as soon as its batch ends, the plot, and the closing line or error. A context
    manager around the batches: on a stop it keeps the jobs already done and the log, writes the current images of
    the batch that was running and a checkpoint, and says how to resume."""

    def __init__(self, args: argparse.Namespace, config: Config, plan: Plan, weights: dict, start: float,
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
        self.blocks_said: set[int] = set()  # the scales whose blocks the stderr line and the log have told
        self._stop_logged = False
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> "Reporter":
        path = self.plan.log_path
        self.log = self._stack.enter_context(json_lines(path, bool(self.resumed))) if path else None
        if self.log and self.resumed:
            self.log({"event": "resumed", "step": self.resumed["step"], "job": self.resumed["first"]})
        self.bar = self._stack.enter_context(progress_bar(self.total_steps * len(self.plan.jobs), self.args.quiet))
        self.environment = record.environment()  # the same for every batch
        self.loop_start = time.perf_counter()
        return self

    def stopped(self, state) -> NoReturn:
        """End the run that `optimize_batches` stopped (a `run.records.BatchState`): log the stop, write the batch's
        current images and the checkpoint, and raise `Interrupted` with the stop signal's status."""
        status = STOPS.requested() or Interrupted.CTRL_C
        self._log_stop(status, {"step": state.step, "job": self.plan.first + state.first})
        if self.plan.checkpoint is not None:
            with STOPS.deferred():  # a second Ctrl-C does not cut the checkpoint short
                self.stopped_note = self._save_checkpoint(state)
        raise Interrupted("", status)

    def _log_stop(self, status: int, where: dict) -> None:
        if self.log and not self._stop_logged:
            self.log({"event": "interrupted", "status": status, **where})
        self._stop_logged = True

    def __exit__(self, kind, error, trace) -> None:
        stopped = kind is not None and issubclass(kind, KeyboardInterrupt)
        status = getattr(error, "status", Interrupted.CTRL_C)
        if stopped:
            self._log_stop(status, {})  # a stop outside the loop (while writing a batch): no state to keep
        self._stack.__exit__(kind, error, trace)
        self.end = time.perf_counter()
        if stopped:
            raise Interrupted(self._interrupted(), status) from None

    def _save_checkpoint(self, state) -> str:
        """Write the stopped batch's current images (OUTPUT_STEM.partial.png) and the checkpoint; returns what the
        closing line says about them."""
        from ..run import checkpoint
        from ..weights.download import file_digest

        partials, lost = [], []
        for j, image in enumerate(state.images):
            path = partial_path(self.plan.outputs[state.first + j])
            try:  # one image that cannot be written (a folder of that name, a full disk) costs only itself
                images.save(image, path)
                partials.append(path)
            except InputError as e:
                lost.append(f"the current image {path} was not written ({e.problem})")
        inputs = sorted({str(p) for c, ss in self.plan.jobs for p in (c, *ss)} | ({self.config.init}
                        if is_file(self.config.init) else set()) | {str(p) for p in mask_paths(self.config)})
        saved = True
        try:
            checkpoint.save(self.plan.checkpoint, state, {
                "argv": self.args.argv, "cwd": getattr(self.args, "cwd", str(Path.cwd())),
                "weights_sha256": self.weights["sha256"],
                "inputs": {p: file_digest(p, "sha256") for p in inputs}, "partials": [str(p) for p in partials],
                "partial_sha256": {str(p): file_digest(p, "sha256") for p in partials},
                "outputs_sha256": {str(o): file_digest(o, "sha256") if o.is_file() else None
                                   for o in self.plan.outputs[state.first:]},
                **({"log_sha256": file_digest(self.plan.log_path, "sha256")} if self.plan.log_path else {}),
                "first": state.first, "step": state.step})
        except InputError as e:  # said, as a failed partial image is: what was kept is said too
            saved, why = False, e.problem
        where = (f"the current image {partials[0]}" if len(partials) == 1 else
                 f"the current images of {len(partials)} jobs (OUTPUT_STEM.partial.png)")
        go_on = f"continue with: {PROG} --resume {self.plan.checkpoint}; "
        if saved and not lost:
            return f"{where} (step {state.step}) and the checkpoint {self.plan.checkpoint} were written; {go_on}"
        kept = f"{where} (step {state.step}) {'was' if len(partials) == 1 else 'were'} written; " if partials else ""
        checkpoint_said = (f"the checkpoint {self.plan.checkpoint} (step {state.step}) was written; {go_on}" if saved
                           else f"the checkpoint {self.plan.checkpoint} was not written ({why}); ")
        return "".join(f"{w}; " for w in lost) + kept + checkpoint_said

    def _remove_used(self, meta: dict, at_ckpt: Optional[dict]) -> None:
        """Remove the stopped run's checkpoint at this run's checkpoint path, when it is this command's (never a
        copy given to --resume from elsewhere: that one is the user's), and its partial images: this run's own
        partial-image names, each only while it is the very image the stopped run wrote (the SHA-256 `meta`
        records; a file put there since is kept). `at_ckpt`: the metadata of the checkpoint at this run's path."""
        from ..run import checkpoint
        from ..weights.download import file_digest

        ckpt = self.plan.checkpoint
        own = at_ckpt is not None and checkpoint_command(at_ckpt) == checkpoint_command(meta)
        digests = meta.get("partial_sha256") if isinstance(meta.get("partial_sha256"), dict) else {}
        used = []
        for path in (partial_path(o) for o in self.plan.outputs):
            recorded = next((d for p, d in digests.items() if location(Path(meta.get("cwd", "."), p)) ==
                             location(path)), None)
            if recorded is not None and path.is_file() and file_digest(path, "sha256") == recorded:
                used.append(path)
        checkpoint.remove(([ckpt] if own else []) + used)

    def _stale(self, meta: Optional[dict]) -> None:
        """An earlier stopped run's checkpoint at this run's checkpoint path (`meta`: its metadata; None: there is
        none), stale now that this run has written its outputs anew: removed with this run's partial-image names.
        (Planning refused a run whose checkpoint path holds anything but this command's: `check_derived_kept`.)"""
        if meta is not None and checkpoint_command(meta) == (self.args.argv, getattr(self.args, "cwd", None)):
            self._remove_used(meta, meta)

    def _where(self) -> str:
        """What a finished run wrote, for its closing line: the one output, or the images of a batch into the
        --output folder; a resumed batch run counts the images the stopped run wrote apart, and names one of them
        that is no longer there."""
        outputs = self.plan.outputs
        if self.plan.n_all == 1:
            return str(outputs[0])
        if not self.resumed:
            return f"{_images(len(outputs))} to {self.args.output}"
        before = outputs[:self.resumed["first"]]  # the stopped run's finished batches
        gone = [o for o in before if not o.is_file()]
        where = f"{_images(len(self.written))} to {self.args.output}"
        if before:
            where += f" ({len(before) - len(gone)} more from before the stop"
            where += f"; {gone[0]}, written before the stop, is missing)" if gone else ")"
        return where

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
                images.save(p.image[j], intermediate_path(self.plan.outputs[p.first_job + j], p.step))
        if p.blocks and p.scale not in self.blocks_said:  # once per scale: on stderr and in the log
            self.blocks_said.add(p.scale)
            if not self.args.quiet:
                self.bar.write(f"{PROG}: scale {p.scale + 1}: {p.size[0]}x{p.size[1]} by {p.blocks['count']} blocks "
                               f"of {p.blocks['tile']} px (halo {p.blocks['halo']} px), planned peak "
                               f"{p.blocks['planned_peak_bytes'] / 2**30:.2f} GiB", file=sys.stderr)
            if self.log:
                self.log({"event": "blocks", "scale": p.scale, "size": list(p.size), **p.blocks})
        postfix = {"loss": span(p.losses["total"][-1])}
        if p.blocks:
            postfix["blocks"] = p.blocks["count"]
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(n * group)

    def batch_done(self, batch) -> None:
        """Write the images and run records of the batch's jobs (a `run.records.Batch`: plan jobs batch.first,
        batch.first + 1, ...); a job whose loss stopped being finite gets its last image with a finite loss, and
        none if it never had one."""
        STOPS.check()  # a stop that came during the batch's last chunk: its images are not written
        first, history = batch.first, batch.history
        self.histories.append(history)
        timing = record.timing(self.start, self.loop_start, time.perf_counter(), self.reports)
        for j, bad in enumerate(divergence(batch.images, history["total"])):
            image_step = int(batch.image_steps[j])
            if bad is not None:
                self.diverged[first + j] = (bad, image_step)
                if image_step < 0:
                    continue
            (c, s), out = self.plan.jobs[first + j], self.plan.outputs[first + j]
            images.save(batch.images[j], out)
            diverged = {"diverged_at_step": bad, "image_step": image_step} if bad is not None else {}
            write_json(summary_path(out), {**record.run_record(
                self.config, content=str(c), style=",".join(map(str, s)), output=str(out),
                final=record.final_losses(history, j),
                job=self.plan.first + first + j if self.plan.n_all > 1 else None, preset=self.args.preset,
                weights=self.weights, env=self.environment, time=timing,
                blocks=batch.blocks), **diverged})
            if bad is None:
                self.written.append(out)

    def finish(self) -> None:
        """After every batch: the plot, then the divergence error or the closing line. A resumed run's checkpoint
        and partial images, no longer needed, are removed; so are those of an earlier stopped run of the same
        outputs, which this run has written anew (only a file that is an nst_jax checkpoint, at this run's checkpoint
        path, and this run's own partial-image names)."""
        from ..run import checkpoint
        from ..run.records import joined_histories

        at_ckpt = checkpoint.read_meta(self.plan.checkpoint) if self.plan.checkpoint is not None else None
        if self.resumed:  # what the stopped run wrote and this run has used up; never a user's copy or file
            self._remove_used(self.resumed, at_ckpt)
        elif self.plan.checkpoint is not None and not self.diverged and self.histories:
            self._stale(at_ckpt)
        history = joined_histories(self.histories) if self.histories else None
        outputs = self.plan.outputs
        if self.plan.plot_path and history is not None:
            try:
                plot_losses(history, term_weights(self.config), self.plan.plot_path,
                            title=f"{PROG}: {outputs[0].name}" + (f" and {len(outputs) - 1} more" * (len(outputs) > 1)))
            except KeyboardInterrupt as e:  # the images are written: say so, not that the output was not
                raise Interrupted(f"wrote {self._where()}; the plot {self.plan.plot_path} was not written",
                                  getattr(e, "status", Interrupted.CTRL_C)) from None
        if self.diverged:
            j, (step, image_step) = next(iter(self.diverged.items()))
            others = f" ({len(self.diverged)} of {len(outputs)} jobs; the others were written)" * (len(outputs) > 1)
            what = ("not written" if image_step < 0 else
                    f"written from step {image_step}, the last image whose loss was finite")
            raise InputError(outputs[j], f"{what}: the optimisation diverged (loss not finite from step "
                                         f"{step}){others}; try --box clip, a smaller --lr, or smaller loss weights")
        if not self.args.quiet:
            final = f", final loss {span(history['total'][-1])}" if self.total_steps and history else ""
            where = self._where()
            resumed = (f", resumed at step {self.resumed['step']}" + (f" of job {self.resumed['first']}"
                                                                     if self.plan.n_all > 1 else "") + ","
                       if self.resumed else "")  # the time is this run's only
            print(f"wrote {where} ({self.plan.whose}{self.total_steps} steps{resumed} in "
                  f"{self.end - self.loop_start:.1f} s{final})", file=sys.stderr)


def _images(n: int) -> str:
    return f"{n} image{'s' * (n != 1)}"


def write_json(path: Path, data: dict) -> None:
    """`data` as strict, indented JSON at `path` (atomic write)."""
    with atomic_path(path, "the run summary") as tmp:
        tmp.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")


@contextlib.contextmanager
def json_lines(path: Path, append: bool = False) -> Iterator[Callable[[dict], None]]:
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


def span(losses) -> str:
    """Final losses of a run's jobs, shape (jobs,), as text: the one value, or the range over the jobs."""
    low, high = float(min(losses)), float(max(losses))
    return f"{low:.4g}" if len(losses) == 1 else f"{low:.4g} to {high:.4g} over {len(losses)} jobs"


def divergence(result, totals) -> list[Optional[int]]:
    """For each job: None if its final image (result[j], [H, W, 3]) and losses (totals[:, j], [steps]) are finite,
    else the first step whose loss is not (the last step if only the image is not)."""
    finite, out = np.isfinite(np.asarray(totals)), []
    for j, image in enumerate(result):
        bad = np.flatnonzero(~finite[:, j])
        out.append(int(bad[0]) if bad.size else (None if np.isfinite(image).all() else len(totals) - 1))
    return out
