"""`python -m nst_jax` / `nst-jax`: argparse built from `Config`, a progress bar, logs, saves, clean errors.

No algorithm code lives here: everything is `nst_jax.stylize`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Iterator, Optional, Sequence

from . import images
from .config import PRESETS, Config, preset_config
from .errors import InputError, exit_status
from .files import atomic_path, check_writable_target
from .weights import missing_weights_message

PROG = "python -m nst_jax"


def _str_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _float_list(text: str) -> tuple[float, ...]:
    return tuple(float(item) for item in _str_list(text))


def _int_list(text: str) -> tuple[int, ...]:
    return tuple(int(item) for item in _str_list(text))


# How to parse Config fields whose type is not the type of their default.
_PARSERS = {
    "size": int,
    "batch_size": int,
    "lr": float,
    "adam_betas": _float_list,
    "scale_sizes": _int_list,
    "scale_steps": _int_list,
    "content_layers": _str_list,
    "style_layers": _str_list,
    "style_layer_weights": _float_list,
}
_METAVARS = {
    "content_layers": "L[,L..]",
    "style_layers": "L[,L..]",
    "style_layer_weights": "W[,W..]",
    "adam_betas": "B1,B2",
    "scale_sizes": "N[,N..]",
    "scale_steps": "N[,N..]",
    "init": "noise|content|style|PATH",
}


def _show(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: the file options, then one option per `Config` field (defaults come from Config)."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Neural style transfer (Gatys, Ecker & Bethge) in JAX. Defaults are the paper's.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  python -m nst_jax --content examples/content.png --style examples/style.png "
        "--output out.png --size 256 --steps 100\n\n"
        "environment:\n  NST_JAX_HUGE_PAGES=auto|1|0  restart with glibc's transparent huge pages "
        "(GLIBC_TUNABLES=glibc.malloc.hugetlb=1)\n                               from 1024 px on (auto, the default), "
        "at every size, or never; needs glibc >= 2.35\n                               and a kernel that offers them "
        "on request (see README)",
    )
    files = parser.add_argument_group("files")
    files.add_argument("--content", required=True, nargs="+", metavar="PATH",
                       help="content image(s) or folder(s); several make one batch with every style")
    files.add_argument("--style", required=True, nargs="+", metavar="PATH", help="style image(s) or folder(s)")
    files.add_argument("--output", required=True, metavar="PATH",
                       help="output image (.png, .jpg); with several jobs, a folder for CONTENT_STYLE.png files")
    files.add_argument(
        "--weights", metavar="PATH",
        help="VGG19 weights: Keras .h5 or converted .npz (default: the Keras file under the weights folder)",
    )
    files.add_argument("--log", metavar="PATH", help="JSON lines, one per step: step, content, style, tv, total")
    files.add_argument("--save-every", type=int, metavar="N", help="also save the image every N steps")
    files.add_argument("--quiet", action="store_true", help="no progress bar or messages")
    files.add_argument(
        "--no-compile-cache", action="store_true",
        help="do not use JAX's persistent compilation cache (default: on, in ~/.cache/nst_jax/xla or "
        "$NST_JAX_COMPILATION_CACHE; NST_JAX_COMPILATION_CACHE=0 also turns it off)",
    )
    files.add_argument(
        "--preset", choices=sorted(PRESETS),
        help="settings that reproduce a known implementation (see README); other options override them",
    )

    hosts = parser.add_argument_group(
        "multi-host (jax.distributed)",
        "Run the same command on every host: each process runs its contiguous share of the jobs\n"
        "on its own devices and writes those outputs (a log gets a .processI suffix per process).",
    )
    hosts.add_argument("--distributed", action="store_true",
                       help="join a multi-process JAX run; the cluster is detected (Cloud TPU, SLURM, Open MPI, "
                       "Kubernetes) unless the three options below give it")
    hosts.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address (implies --distributed)")
    hosts.add_argument("--num-processes", type=int, metavar="N", help="processes in the run (with --coordinator)")
    hosts.add_argument("--process-id", type=int, metavar="I", help="this process, 0..N-1 (with --coordinator)")

    settings = parser.add_argument_group("settings (defaults: the paper's)")
    for f in dataclasses.fields(Config):
        shown = "" if f.default is None else f" (default: {_show(f.default)})"
        kwargs = dict(default=argparse.SUPPRESS, help=f.metadata["help"] + shown)
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        else:
            kwargs["type"] = _PARSERS.get(f.name, type(f.default))
            kwargs["metavar"] = _METAVARS.get(f.name, {int: "N", float: "F"}.get(kwargs["type"]))
        settings.add_argument("--" + f.name.replace("_", "-"), **kwargs)
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    """A Config from the settings given on the command line over the preset's (the rest keep Config's defaults)."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if hasattr(args, f.name)}
    sizes = given.get("scale_sizes")
    if sizes and "size" in given and given["size"] != sizes[-1]:
        raise ValueError(f"--size {given['size']} conflicts with --scale-sizes, whose last size ({sizes[-1]}) is "
                         "the output size; give one of them")
    if sizes and "scales" in given and given["scales"] != len(sizes):
        raise ValueError(f"--scales {given['scales']} conflicts with the {len(sizes)} --scale-sizes; give one")
    return preset_config(args.preset, **given) if args.preset else Config(**given)


def check_hosts(args: argparse.Namespace) -> None:
    """Usage errors of the multi-host options: the coordinator, process count and id come all together or not at
    all, and describe a valid process (given, they imply --distributed: see `joined_hosts`)."""
    manual = (args.coordinator, args.num_processes, args.process_id)
    if any(v is not None for v in manual):
        if any(v is None for v in manual):
            raise ValueError("--coordinator, --num-processes and --process-id go together; give all three, or "
                             "none with --distributed to detect the cluster")
        if args.num_processes < 1:
            raise ValueError(f"--num-processes must be >= 1, got {args.num_processes}")
        if not 0 <= args.process_id < args.num_processes:
            raise ValueError(f"--process-id {args.process_id} is not in 0..{args.num_processes - 1} "
                             f"(--num-processes {args.num_processes})")


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
    return output.with_name(f"{output.stem}.{step:05d}{output.suffix}")


def _default_weights(source: str, quiet: bool) -> Path:
    """The default weights file of `source`, downloaded (hash-checked) on first use as Keras and torchvision do."""
    from .weights import default_path
    from .weights.download import NO_DOWNLOAD_ENV, auto_download_allowed, download

    path = default_path(source)
    if path.exists():
        return path
    if not auto_download_allowed():
        raise InputError(None, missing_weights_message(path, source) + f" ({NO_DOWNLOAD_ENV} is set)")
    if not quiet:
        print(f"{PROG}: no VGG19 weights at {path}; downloading them once", file=sys.stderr)
    return download(source, path.parent, progress=not quiet)


def _image_paths(values: Sequence[str]) -> list[Path]:
    """Paths given on the command line; a folder stands for the images in it."""
    paths = []
    for value in values:
        path = Path(value)
        paths += images.list_images(path) if path.is_dir() else [path]
    return paths


def _outputs(args: argparse.Namespace, jobs: list[tuple[Path, Path]]) -> list[Path]:
    """One output per job: --output itself for one job, else CONTENT_STYLE.png in the --output folder."""
    if len(jobs) == 1:
        return [images.check_output_path(args.output)]
    folder = Path(args.output)
    if not folder.is_dir():
        raise InputError(folder, f"with {len(jobs)} jobs, --output must be an existing folder")
    return [images.check_output_path(folder / f"{c.stem}_{s.stem}.png") for c, s in jobs]


def check_shares(jobs: list[tuple[Path, Path]], loaded: dict, config: Config, count: int) -> list[range]:
    """`plan_scales` (sizes, one aspect ratio per program, the memory preflight) for the jobs each of `count`
    processes will run, batched as that process will batch them. Every process checks every share, so all hosts of
    a multi-host run agree on bad input before any work. Returns the shares (`process_share` of each process);
    raises InputError."""
    from .transfer import jobs_per_program, plan_scales, process_share

    shares = [process_share(len(jobs), index, count) for index in range(count)]
    for share in shares:
        part = jobs[share.start:share.stop]
        if part:  # sizes and memory, named by file
            plan_scales([loaded[c].shape[:2] for c, _ in part], [loaded[s].shape[:2] for _, s in part], config,
                        jobs_per_program(config, len(part)), names=part)
    return shares


def run(args: argparse.Namespace, config: Config) -> None:
    """Check every input, run the style transfer(s) (in a multi-host run this process's share, `check_shares`),
    write their outputs. Raises InputError on bad input."""
    import jax

    from .transfer import as_weights, optimize

    all_jobs = list(itertools.product(_image_paths(args.content), _image_paths(args.style)))
    all_outputs = _outputs(args, all_jobs)  # fail before any work
    index, count = jax.process_index(), jax.process_count()
    log_path = check_writable_target(_process_path(Path(args.log), index, count)) if args.log else None
    if args.save_every is not None and args.save_every < 1:
        raise InputError(None, f"--save-every must be >= 1, got {args.save_every}")
    loaded = {p: images.load(p) for p in dict.fromkeys(p for job in all_jobs for p in job)}
    mine = check_shares(all_jobs, loaded, config, count)[index]
    jobs, outputs = all_jobs[mine.start:mine.stop], all_outputs[mine.start:mine.stop]
    share = f"job {mine.start}" if len(mine) == 1 else f"jobs {mine.start}-{mine.stop - 1}"
    whose = f"process {index} of {count}, {share} of {len(all_jobs)}; " * (count > 1)
    if not jobs:
        if not args.quiet:
            print(f"{PROG}: process {index} of {count}: no jobs (there are {len(all_jobs)})", file=sys.stderr)
        return
    weights = as_weights(args.weights if args.weights else _default_weights(config.weights_source, args.quiet))
    total_steps = sum(steps for _, steps in config.schedule)

    with contextlib.ExitStack() as stack:
        # The log is written as the run goes, under a temporary name; it gets its real name only on success.
        log = open(stack.enter_context(atomic_path(log_path)), "w") if log_path else None
        if log:
            stack.callback(log.close)  # runs before atomic_path renames the file
        bar = stack.enter_context(_progress_bar(total_steps * len(jobs), args.quiet))

        def on_progress(p):
            n, group = p.losses["total"].shape[:2]
            if log:
                for i in range(n):
                    for j in range(group):
                        job = {"job": mine.start + p.first_job + j} if len(all_jobs) > 1 else {}
                        record = {**job, "step": p.step - n + i, **{k: float(v[i, j]) for k, v in p.losses.items()}}
                        log.write(json.dumps(record) + "\n")
            if args.save_every and p.step % args.save_every == 0 and p.step < p.total_steps:
                for j in range(group):
                    images.save(p.image[j], _intermediate_path(outputs[p.first_job + j], p.step))
            bar.set_postfix(loss=f"{float(p.losses['total'][-1].sum()):.4g}", refresh=False)
            bar.update(n * group)

        start = time.perf_counter()
        result, history = optimize([loaded[c] for c, _ in jobs], [loaded[s] for _, s in jobs], weights, config,
                                   callback=on_progress, report_every=args.save_every)
    for image, out in zip(result, outputs):
        images.save(image, out)
    if not args.quiet:
        final = f", final loss {history['total'][-1].sum():.4g}" if total_steps else ""
        where = outputs[0] if len(all_jobs) == 1 else f"{len(jobs)} image{'s' * (len(jobs) > 1)} to {args.output}"
        print(f"wrote {where} ({whose}{total_steps} steps in {time.perf_counter() - start:.1f} s{final})",
              file=sys.stderr)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of `python -m nst_jax`. Returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        check_hosts(args)
    except ValueError as e:  # a setting out of range
        parser.error(" ".join(str(e).split()))
    if not args.no_compile_cache:
        from .compile_cache import enable_compilation_cache

        enable_compilation_cache()

    def action():
        with joined_hosts(args):
            if config.precision == "float64":
                import jax

                with jax.enable_x64(True):  # only for this run: the caller's JAX mode is restored afterwards
                    run(args, config)
            else:
                run(args, config)

    return exit_status(PROG, action, f"{args.output} was not written")
