"""`python -m nst_jax` / `nst-jax`: argparse built from `Config`, a progress bar, logs, saves, clean errors.

No algorithm code lives here: everything is `nst_jax.stylize`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from . import images
from .config import PRESETS, Config, preset_config
from .errors import InputError
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
        "--output out.png --size 256 --steps 100",
    )
    files = parser.add_argument_group("files")
    files.add_argument("--content", required=True, metavar="PATH", help="content image")
    files.add_argument("--style", required=True, metavar="PATH", help="style image")
    files.add_argument("--output", required=True, metavar="PATH", help="output image (.png, .jpg)")
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
    return preset_config(args.preset, **given) if args.preset else Config(**given)


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


def run(args: argparse.Namespace, config: Config) -> None:
    """Check every input, run the style transfer, write the outputs. Raises InputError on bad input."""
    from .transfer import as_weights, stylize

    output = images.check_output_path(args.output)  # fail before any work
    log_path = check_writable_target(args.log) if args.log else None
    if args.save_every is not None and args.save_every < 1:
        raise InputError(None, f"--save-every must be >= 1, got {args.save_every}")
    content, style = images.load(args.content), images.load(args.style)
    weights = as_weights(args.weights if args.weights else _default_weights(config.weights_source, args.quiet))

    with contextlib.ExitStack() as stack:
        # The log is written as the run goes, under a temporary name; it gets its real name only on success.
        log = open(stack.enter_context(atomic_path(log_path)), "w") if log_path else None
        if log:
            stack.callback(log.close)  # runs before atomic_path renames the file
        bar = stack.enter_context(_progress_bar(config.steps, args.quiet))

        def on_progress(p):
            first = p.step - len(p.losses["total"])
            if log:
                for i in range(len(p.losses["total"])):
                    record = {"step": first + i, **{k: float(v[i]) for k, v in p.losses.items()}}
                    log.write(json.dumps(record) + "\n")
            if args.save_every and p.step % args.save_every == 0 and p.step < p.total_steps:
                images.save(p.image, _intermediate_path(output, p.step))
            bar.set_postfix(loss=f"{float(p.losses['total'][-1]):.4g}", refresh=False)
            bar.update(len(p.losses["total"]))

        start = time.perf_counter()
        result = stylize(content, style, weights, config, callback=on_progress, report_every=args.save_every)
    images.save(result.image, output)
    if not args.quiet:
        final = f", final loss {result.history['total'][-1]:.4g}" if config.steps else ""
        print(f"wrote {output} ({config.steps} steps in {time.perf_counter() - start:.1f} s{final})", file=sys.stderr)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of `python -m nst_jax`. Returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as e:  # a setting out of range
        parser.error(" ".join(str(e).split()))
    if not args.no_compile_cache:
        from .compile_cache import enable_compilation_cache

        enable_compilation_cache()
    try:
        if config.precision == "float64":
            import jax

            with jax.enable_x64(True):  # only for this run: the caller's JAX mode is restored afterwards
                run(args, config)
        else:
            run(args, config)
    except InputError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; {args.output} was not written", file=sys.stderr)
        return 130
    return 0
