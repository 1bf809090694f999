"""Write the example images (the README's main command, the notebooks), small copies of public-domain and CC0
pictures:

    pip install scikit-image && python examples/make_examples.py [--shared ../shared/images]

Photos, CC0, from scikit-image's data: examples/chelsea.jpg, "Chelsea the cat" by Stefan van der Walt
(`skimage.data.chelsea`, 451x300); examples/coffee.jpg, "Coffee" by Rachel Michetti (`skimage.data.coffee`,
600x400, resized to chelsea's 451x300 so that the two run as one batch). Paintings, public domain, their longer side
reduced to 512 px from the copies in the project's shared images: examples/starry_night.jpg (Vincent van Gogh,
"The Starry Night", 1889), examples/the_scream.jpg (Edvard Munch, "The Scream", 1893), examples/shipwreck.jpg
(J. M. W. Turner, "The Shipwreck", 1805).
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

    chelsea = Image.fromarray(data.chelsea())
    chelsea.save(HERE / "chelsea.jpg", quality=92)
    Image.fromarray(data.coffee()).resize(chelsea.size, Image.LANCZOS).save(HERE / "coffee.jpg", quality=92)
    for name in ("starry_night", "the_scream", "shipwreck"):
        with Image.open(args.shared / f"{name}.jpg") as style:
            style = style.convert("RGB")
            style.thumbnail((512, 512), Image.LANCZOS)
            style.save(HERE / f"{name}.jpg", quality=92)


if __name__ == "__main__":
    main()
