"""Write the example images of the README's main command, small copies of public-domain and CC0 pictures:

    pip install scikit-image && python examples/make_examples.py [--shared ../shared/images]

examples/chelsea.jpg: "Chelsea the cat", photo by Stefan van der Walt, CC0, from scikit-image's data
(`skimage.data.chelsea`, 451x300). examples/starry_night.jpg: Vincent van Gogh, "The Starry Night" (1889), public
domain, its longer side reduced to 512 px from the copy in the project's shared images.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=HERE.parent.parent / "shared" / "images",
                        help="folder holding starry_night.jpg (default: ../shared/images from the project root)")
    args = parser.parse_args()
    from skimage import data

    Image.fromarray(data.chelsea()).save(HERE / "chelsea.jpg", quality=92)
    with Image.open(args.shared / "starry_night.jpg") as style:
        style = style.convert("RGB")
        style.thumbnail((512, 512), Image.LANCZOS)
        style.save(HERE / "starry_night.jpg", quality=92)


if __name__ == "__main__":
    main()
