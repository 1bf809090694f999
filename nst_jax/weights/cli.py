"""`python -m nst_jax.weights`: download, convert, inspect and normalise VGG19 weight files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

from ..core.layers import CONV_NAMES
from ..errors import InputError, OneLineParser, exit_status
from ..stops import STOPS
from .core import save_npz, weights_dir
from .download import SOURCES, download, file_digest
from .reader import detect_format, load

PROG = "python -m nst_jax.weights"
FORMAT_NAMES = {"h5": "Keras HDF5", "npz": "nst_jax npz", "pth-zip": "PyTorch zip", "pth-legacy": "PyTorch legacy"}


def info_lines(path: Path) -> list[str]:
    """What `info` prints: format, source, preprocessing, layers and shapes, parameter count, hashes."""
    kind = detect_format(path)
    w = load(path)
    sha256, md5 = file_digest(path, "sha256"), file_digest(path, "md5")
    published = [s.name for s in SOURCES.values() if s.matches(sha256 if s.hash_name == "sha256" else md5)]
    lines = [
        f"file:          {path} ({path.stat().st_size:,} bytes)",
        f"format:        {FORMAT_NAMES[kind]}",
        f"source:        {w.source}",
        f"preprocessing: {w.preprocess}",
        f"sha256:        {sha256}",
        f"md5:           {md5}" + (f"  (the published {published[0]} file)" if published else ""),
        "layers:",
    ]
    total = 0
    for conv in CONV_NAMES:
        k, b = w.params[conv]["kernel"], w.params[conv]["bias"]
        total += k.size + b.size
        lines.append(f"  {conv:8s} kernel {str(tuple(k.shape)):20s} bias {tuple(b.shape)}")
    lines.append(f"parameters:    {total:,}")
    return lines


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description="Download, convert, inspect and normalise VGG19 weights.")
    sub = parser.add_subparsers(dest="command", required=True)

    d = sub.add_parser("download", help="download a published VGG19 file and verify its hash")
    d.add_argument("--source", choices=sorted(SOURCES), default="keras", help="which file (default: keras)")
    d.add_argument("--dir", type=Path, help=f"folder to save into (default: {weights_dir()})")
    d.add_argument("--url", help="fetch from this mirror instead (the published hash is still checked)")

    c = sub.add_parser("convert", help="convert any supported weights file to nst_jax .npz")
    c.add_argument("src", type=Path, help="weights file: Keras .h5, PyTorch .pth (either serialisation) or .npz")
    c.add_argument("dst", type=Path, help="the .npz to write")

    i = sub.add_parser("info", help="print format, layers, parameter count, preprocessing and hashes")
    i.add_argument("file", type=Path, help="weights file: Keras .h5, PyTorch .pth or .npz")

    n = sub.add_parser("normalize", help="the paper's normalised VGG19: mean activation 1 for every filter")
    n.add_argument("src", type=Path, help="weights file to normalise (any format `convert` reads)")
    n.add_argument("dst", type=Path, help="the .npz to write")
    n.add_argument("--images", type=Path, required=True, help="folder of images to take the means over")
    n.add_argument("--size", type=int, default=256, help="resize images to this longer side (default: 256)")
    n.add_argument("--pooling", choices=("avg", "max"), default="avg", help="pooling of the network (default: avg)")
    return parser


def run(args: argparse.Namespace) -> None:
    if args.command == "download":
        path = download(args.source, args.dir, args.url)
        print(f"{path} ({SOURCES[args.source].hash_name} verified)")
    elif args.command == "convert":
        if args.dst.suffix != ".npz":
            raise InputError(args.dst, "the converted file must end in .npz")
        save_npz(load(args.src), args.dst)
        print(f"wrote {args.dst}")
    elif args.command == "info":
        print("\n".join(info_lines(args.file)))
    elif args.command == "normalize":
        from ..core.vgg import smallest_side
        from ..io import images
        from .normalize import normalize

        if args.dst.suffix != ".npz":
            raise InputError(args.dst, "the normalised file must end in .npz")
        w = load(args.src)
        if not args.images.is_dir():
            raise InputError(args.images, "--images must be a folder of images")
        least = smallest_side(CONV_NAMES[-1].replace("conv", "relu"))
        pics = []
        for path in images.list_images(args.images):
            pic = images.resize_longer_side(images.load(path, longer_side=args.size), args.size)  # reduced while read
            if min(pic.shape[:2]) < least:  # conv5_x would see no positions: its means would be undefined
                raise InputError(path, f"resized to {pic.shape[1]}x{pic.shape[0]}, too small: every filter up to "
                                       f"conv5_4 needs at least {least} px on each side; raise --size")
            pics.append(pic)
        normalised, report = normalize(w, pics, args.pooling)
        save_npz(normalised, args.dst)
        dead = sum(report["dead"].values())
        print(f"wrote {args.dst} (means over {len(pics)} images; {dead} filters never fire and keep their scale)")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "normalize" and args.size < 16:
        parser.error(f"--size must be at least 16 (relu5_x needs 16 px on each side), got {args.size}")
    with STOPS.on_signals():
        return exit_status(PROG, lambda: run(args), "nothing was written")

