"""Generate the example images used by the README's main command (deterministic; no third-party images).

    python examples/make_examples.py        # writes examples/content.png and examples/style.png

content.png: a small landscape (sky gradient, sun, hills, a house). style.png: colourful brush strokes that follow
a swirling flow field, painted with short semi-transparent lines.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent


def make_content(width: int = 384, height: int = 256) -> Image.Image:
    y = np.linspace(0.0, 1.0, height)[:, None, None]
    sky = (1 - y) * np.array([70, 130, 210]) + y * np.array([200, 225, 245])
    img = np.broadcast_to(sky, (height, width, 3)).copy()
    yy, xx = np.mgrid[0:height, 0:width]
    sun = (xx - 0.78 * width) ** 2 + (yy - 0.22 * height) ** 2 < (0.08 * height) ** 2
    img[sun] = [250, 215, 90]
    for base, amp, freq, colour in ((0.62, 0.06, 2.1, [90, 150, 80]), (0.75, 0.05, 3.3, [60, 120, 55])):
        ridge = height * (base + amp * np.sin(freq * np.pi * xx / width + base * 7))
        img[yy > ridge] = colour
    im = Image.fromarray(img.astype(np.uint8))
    d = ImageDraw.Draw(im)
    x0, y0, w, h = int(0.22 * width), int(0.55 * height), int(0.2 * width), int(0.22 * height)
    d.rectangle([x0, y0, x0 + w, y0 + h], fill=(220, 200, 170), outline=(80, 60, 40), width=2)
    d.polygon([(x0 - 8, y0), (x0 + w // 2, y0 - h * 0.7), (x0 + w + 8, y0)], fill=(170, 60, 50))
    d.rectangle([x0 + w // 2 - 8, y0 + h // 2, x0 + w // 2 + 8, y0 + h], fill=(100, 70, 40))
    d.rectangle([x0 + 10, y0 + 12, x0 + 30, y0 + 30], fill=(150, 200, 230), outline=(80, 60, 40))
    return im


def make_style(size: int = 320, strokes: int = 3500, seed: int = 7) -> Image.Image:
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (size, size), (25, 35, 80))
    d = ImageDraw.Draw(im, "RGBA")
    palette = np.array([[40, 70, 160], [70, 120, 200], [240, 210, 80], [250, 240, 170], [30, 50, 110], [120, 170, 220]])
    centres = rng.uniform(0, size, (4, 2))
    for _ in range(strokes):
        p = rng.uniform(0, size, 2)
        colour = palette[rng.integers(len(palette))] + rng.integers(-20, 21, 3)
        for _ in range(6):  # a short curved stroke along the swirling field
            v = sum(np.array([-(p[1] - c[1]), p[0] - c[0]]) / (np.sum((p - c) ** 2) + 400.0) for c in centres)
            v = 7.0 * v / (np.linalg.norm(v) + 1e-9)
            q = p + v
            d.line([tuple(p), tuple(q)], fill=(*np.clip(colour, 0, 255).astype(int).tolist(), 170), width=3)
            p = q
    return im.filter(ImageFilter.SMOOTH)


if __name__ == "__main__":
    make_content().save(HERE / "content.png")
    make_style().save(HERE / "style.png")
    print(f"wrote {HERE / 'content.png'} and {HERE / 'style.png'}")
