"""The jobs of a command line: content and style paths (folders, style sets A,B) as (content, styles) pairs, one
output each, and their images read once at the size the run needs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..config import Config
from ..errors import InputError, UsageError
from ..io import images
from .paths import resolved


def image_paths(values: Sequence[str]) -> list[Path]:
    """Paths given on the command line; a folder stands for the images in it. A file named twice (by any path to
    it) counts once."""
    paths = []
    for value in values:
        path = Path(value)
        paths += images.list_images(path) if path.is_dir() else [path]
    unique: dict[Path, Path] = {}
    for p in paths:
        unique.setdefault(resolved(p), p)
    return list(unique.values())


Job = tuple[Path, tuple[Path, ...]]  # (content, styles): one style image, or several blended in one job


def style_sets(values: Sequence[str]) -> list[tuple[Path, ...]]:
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
            sets += [(p,) for p in image_paths([value])]
    unique: dict[tuple[Path, ...], tuple[Path, ...]] = {}
    for ss in sets:
        unique.setdefault(tuple(resolved(p) for p in ss), ss)
    return list(unique.values())


def styles_name(styles: tuple[Path, ...]) -> str:
    """A style set in output names: STYLE, or STYLE1+STYLE2."""
    return "+".join(p.stem for p in styles)


def outputs_of(args: argparse.Namespace, jobs: list[Job]) -> list[Path]:
    """One output per job: CONTENT_STYLE.png (CONTENT_STYLE1+STYLE2.png for several styles) in the --output folder,
    or for one job --output itself if it is not a folder."""
    folder = Path(args.output)
    if not folder.is_dir():
        if len(jobs) == 1:
            return [images.check_output_path(folder)]
        raise UsageError(folder, f"with {len(jobs)} jobs, --output must be an existing folder")
    outputs, made_by = [], {}
    for c, ss in jobs:
        out = images.check_output_path(folder / f"{c.stem}_{styles_name(ss)}.png")
        job = f"{c} + {' + '.join(map(str, ss))}"
        if out in made_by:
            raise InputError(out, f"would be written by two jobs ({made_by[out]} and {job}); "
                                  f"give the images distinct names")
        outputs.append(out)
        made_by[out] = job
    return outputs


def loaded_images(jobs: list[Job], config: Config, max_pixels: int) -> dict[Path, np.ndarray]:
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
