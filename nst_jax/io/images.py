"""Image files <-> float32 RGB arrays in [0, 1] (host side, Pillow). Never imported by the jitted core."""

from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from ..config import MAX_INPUT_PIXELS
from ..errors import InputError
from .files import atomic_path, check_regular_file, check_writable_target

SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
IMAGE_RANGE_SLACK = 0.25  # how far outside [0, 1] an image array may stray (a resampling overshoot) and be clipped
ImageLike = Union[str, os.PathLike, np.ndarray, Image.Image]  # and anything np.asarray takes, e.g. a jax.Array
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
MAX_PIXELS = MAX_INPUT_PIXELS  # the largest image `load` decodes by default; --max-input-pixels raises it


def list_images(folder: str | os.PathLike) -> list[Path]:
    """The image files (by suffix) in `folder`, sorted; a one-line InputError if there are none."""
    folder = Path(folder)
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise InputError(folder, f"no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
    return found


def load(path: str | os.PathLike, max_pixels: int = MAX_PIXELS, longer_side: Optional[int] = None) -> np.ndarray:
    """Read any image Pillow reads as float32 RGB in [0, 1], [H, W, 3].

    EXIF orientation is applied; grayscale is repeated to RGB; alpha is composited over white; 16-bit images keep
    their precision (divided by 65535).

    Bounded work: the size in the file's header is checked against `max_pixels` before anything is decoded (an
    InputError naming the file, its size and the limit). `longer_side`: the longest side the caller will resize
    the image to; an image at least 4 times larger is reduced while it is decoded (JPEG's DCT scaling, `draft`;
    else `Image.reduce`, an average over f x f blocks, on the 8- or 16-bit decode) to no less than twice that,
    so that memory follows what the run needs rather than the file (a 144 Mpx PNG was decoded in full as float32).
    """
    path = Path(path)
    check_regular_file(path)
    limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's notes on odd files (our own pixel limit is checked below)
            Image.MAX_IMAGE_PIXELS = None  # Pillow's own check off: ours follows the header, with the size in it
            with Image.open(path) as im:
                _check_pixels(path, im.size, max_pixels)
                return from_pil(_reduced(im, longer_side))
    except FileNotFoundError:
        raise InputError(path, "image file not found") from None
    except IsADirectoryError:
        raise InputError(path, "is a folder, not an image file") from None
    except UnidentifiedImageError:
        raise InputError(path, "not an image file (Pillow cannot identify it)") from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, struct.error, zlib.error,
            ZeroDivisionError, RuntimeError) as e:  # what Pillow's decoders raise for damaged files
        raise InputError(path, f"cannot read image ({e})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def _check_pixels(path: Path, size: tuple[int, int], max_pixels: int) -> None:
    """Refuse an image whose header says it has more than `max_pixels` pixels (size: (W, H))."""
    if size[0] * size[1] > max_pixels:
        raise InputError(path, f"{size[0]}x{size[1]} is {size[0] * size[1]} pixels, more than the limit of "
                               f"{max_pixels} (raise it with --max-input-pixels, images.load's max_pixels)")


def _reduced(im: Image.Image, longer_side: Optional[int]) -> Image.Image:
    """`im` decoded, reduced by an integer factor f to no less than 2 x `longer_side` when f >= 2 (see `load`)."""
    factor = max(im.size) // (2 * longer_side) if longer_side else 1
    if factor >= 2 and im.format == "JPEG":
        im.draft(im.mode, (im.size[0] // factor, im.size[1] // factor))  # DCT scaling: 1/2, 1/4 or 1/8, not below
    im.load()
    factor = max(im.size) // (2 * longer_side) if longer_side else 1
    if factor < 2:
        return im
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        im = im.convert("I")  # 16-bit values kept; reduce takes 32-bit integers
    elif im.mode in ("P", "PA", "1"):
        im = im.convert("RGBA" if im.mode == "PA" or "transparency" in im.info else "RGB")
    return im.reduce(factor)


def as_image(image: ImageLike, what: str = "the", longer_side: Optional[int] = None) -> np.ndarray:
    """A path (loaded), a Pillow image (converted as loading converts a file), a float [H, W, 3] RGB array in
    [0, 1], or a uint8 one (divided by 255, as loading does) as a float32 [H, W, 3] array in [0, 1]. Floats at
    most IMAGE_RANGE_SLACK outside [0, 1] are clipped, as resizing clips them; anything else, such as floats in
    0..255 or in [-1, 1], is a ValueError, not a silent run on a different image. `longer_side`: see `load`."""
    if isinstance(image, (str, os.PathLike)):
        return load(image, longer_side=longer_side)
    if isinstance(image, Image.Image):
        return from_pil(image)
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[-1] != 3 or not array.size:
        raise ValueError(f"{what} image must be a non-empty [H, W, 3] RGB array, got shape {array.shape}")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255
    if not np.issubdtype(array.dtype, np.floating):
        raise ValueError(f"{what} image must be float RGB in [0, 1] or uint8, got dtype {array.dtype}")
    array = array.astype(np.float32)
    if not np.isfinite(array).all():
        raise ValueError(f"{what} image has NaN or infinite values")
    return _unit_range(array, f"{what} image", "RGB must be in [0, 1] (divide 0..255 values by 255)")


def _unit_range(array: np.ndarray, what: str, hint: str) -> np.ndarray:
    """`array` clipped to [0, 1] if it lies at most IMAGE_RANGE_SLACK outside, else a ValueError: "`what` values lie
    in [lo, hi]; `hint`"."""
    if array.size and (array.min() < -IMAGE_RANGE_SLACK or array.max() > 1 + IMAGE_RANGE_SLACK):
        raise ValueError(f"{what} values lie in [{array.min():.4g}, {array.max():.4g}]; {hint}")
    return np.clip(array, 0.0, 1.0)


def from_pil(im: Image.Image) -> np.ndarray:
    """A Pillow image as `load` reads a file: EXIF orientation applied, then `to_array`."""
    return to_array(ImageOps.exif_transpose(im))


def to_array(im: Image.Image) -> np.ndarray:
    """A Pillow image as float32 RGB [H, W, 3] in [0, 1] (see `load` for the mode rules)."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):  # 16-bit grayscale (PNG loads as "I")
        gray = np.asarray(im, np.float64)
        # "I" also holds 8-bit values (Image.convert("I") of an 8-bit image): 0..255 only means 8-bit there
        top = 255.0 if im.mode == "I" and gray.size and gray.max() <= 255 else 65535.0
        return np.repeat(np.clip(gray / top, 0.0, 1.0)[..., None], 3, axis=-1).astype(np.float32)
    if im.mode == "F":  # floats: in [0, 1] as arrays are (`as_image`), or refused
        gray = _unit_range(np.asarray(im, np.float32), "float image",
                           "they must be in [0, 1] (convert it to mode 'L', or divide by 255)")
        return np.repeat(gray[..., None], 3, axis=-1)
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = np.asarray(im.convert("RGBA"), np.float32) / 255.0
        alpha = rgba[..., 3:]
        return (rgba[..., :3] * alpha + (1.0 - alpha)).astype(np.float32)  # over white
    return np.asarray(im.convert("RGB"), np.float32) / 255.0


def target_shape(shape: tuple[int, int], longer_side: int) -> tuple[int, int]:
    """(H, W) scaled so that max(H, W) == longer_side, aspect ratio kept (each side at least 1)."""
    h, w = shape
    scale = longer_side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize [H, W, C] float image to (H', W') with Pillow's Lanczos filter per channel; identity if same size."""
    image = np.asarray(image, np.float32)
    if tuple(image.shape[:2]) == tuple(shape):
        return image
    h, w = shape
    channels = [
        np.asarray(Image.fromarray(np.ascontiguousarray(image[..., c])).resize((w, h), Image.Resampling.LANCZOS))
        for c in range(image.shape[-1])
    ]
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0).astype(np.float32)


def resize_longer_side(image: np.ndarray, longer_side: Optional[int]) -> np.ndarray:
    """Resize so the longer side is `longer_side` (None: unchanged). No resampling when it already is."""
    if longer_side is None:
        return np.asarray(image, np.float32)
    return resize(image, target_shape(image.shape[:2], longer_side))


def check_output_path(path: str | os.PathLike) -> Path:
    """Fail early if `path` cannot be written as an image: unknown extension or missing folder."""
    path = Path(path)
    if path.suffix.lower() not in SAVE_FORMATS:
        raise InputError(path, f"unsupported output format {path.suffix!r}; use one of {', '.join(SAVE_FORMATS)}")
    return check_writable_target(path)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[H, W, 3] float in [0, 1] (clipped) -> uint8, rounded to nearest."""
    return np.round(np.clip(np.asarray(image, np.float32), 0.0, 1.0) * 255.0).astype(np.uint8)


# What every image nst_jax writes carries, so that a later run can tell its own frames and partial images from a
# file someone else put at their names (PNG: a Software text chunk; JPEG: a comment).
MARK = "nst_jax"


def save(image: np.ndarray, path: str | os.PathLike, quality: int = 95) -> None:
    """Write [H, W, 3] float RGB in [0, 1] (clipped) as PNG or JPEG, atomically (temp file + rename), marked as
    nst_jax's (`MARK`, `written_by_nst_jax`)."""
    from PIL import PngImagePlugin

    path = check_output_path(path)
    fmt = SAVE_FORMATS[path.suffix.lower()]
    im = Image.fromarray(to_uint8(image))
    if fmt == "JPEG":
        options = {"quality": quality, "comment": MARK.encode()}
    else:
        options = {"pnginfo": PngImagePlugin.PngInfo()}
        options["pnginfo"].add_text("Software", MARK)
    with atomic_path(path, "the image") as tmp:
        im.save(tmp, format=fmt, **options)


def check_ours_to_replace(path: str | os.PathLike, advice: str) -> None:
    """Refuse (InputError naming `path`, then `advice`) to replace a file there that is not an image nst_jax wrote
    (`written_by_nst_jax`); nothing there, or an earlier result, passes."""
    if os.path.lexists(path) and not written_by_nst_jax(path):
        raise InputError(path, f"exists and is not an image nst_jax wrote; {advice}")


def written_by_nst_jax(path: str | os.PathLike) -> bool:
    """Whether `path` is a regular file holding an image that nst_jax wrote (`save`'s mark; only the header is
    read). Anything else (another program's image, a text file, a link to a device) is not."""
    try:
        if not Path(path).is_file():  # a regular file (through a link too): no device, pipe or folder is opened
            return False
        with Image.open(path) as im:
            return im.info.get("Software") == MARK or im.info.get("comment") == MARK.encode()
    except Exception:  # unreadable: not ours
        return False


def png_bytes(image: np.ndarray) -> bytes:
    """[H, W, 3] float RGB in [0, 1] (clipped) as the bytes of a PNG file (for notebooks' displays)."""
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buffer, format="PNG")
    return buffer.getvalue()


def side_by_side(rows: Sequence[Sequence], titles: Optional[Sequence[Sequence[str]]] = None, height: int = 192,
                 gap: int = 4, width: Optional[int] = None) -> Image.Image:
    """A grid picture: each row's images (anything `as_image` takes, or an object with an `.image` such as a
    `Result`) scaled to `height` px (aspect kept), side by side with `gap` px of white between them; `titles[r][c]`,
    if given, written above each image. With `width`, every image is fitted into a height x width cell (centred),
    so that the columns of the rows line up, and titles are cut to the cell.

    E.g. side_by_side([[content, style, result]], [["content", "style", "result"]]). Returns an RGB Pillow image
    (a notebook shows it as it is)."""
    if not rows or not all(len(row) for row in rows):
        raise ValueError("side_by_side needs at least one image in every row")
    if titles is not None and [len(t) for t in titles] != [len(row) for row in rows]:
        raise ValueError(f"titles must match the images row by row: {[len(row) for row in rows]} images, "
                         f"{[len(t) for t in titles]} titles")
    if height < 1 or (width is not None and width < 1) or gap < 0:
        raise ValueError(f"height and width must be positive and gap not negative, got {height}, {width}, {gap}")
    text_size = max(10, height // 14)
    font = ImageFont.load_default(size=text_size)
    caption = (text_size + 2 * gap) if titles else 0

    def cell(image) -> Image.Image:
        image = as_image(getattr(image, "image", image), "a side_by_side")
        h, w = image.shape[:2]
        scale = min(height / h, width / w) if width else height / h
        picture = Image.fromarray(to_uint8(resize(image, (max(1, round(h * scale)), max(1, round(w * scale))))))
        if not width:
            return picture
        box = Image.new("RGB", (width, height), "white")
        box.paste(picture, ((width - picture.width) // 2, (height - picture.height) // 2))
        return box

    def fit(text: str, room: int) -> str:
        while text and draw.textlength(text, font=font) > room:
            text = text[:-1]
        return text

    cells = [[cell(image) for image in row] for row in rows]
    sheet_width = max(sum(c.width for c in row) + gap * (len(row) - 1) for row in cells)
    sheet = Image.new("RGB", (sheet_width, len(cells) * (height + caption) + gap * (len(cells) - 1)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, row in enumerate(cells):
        x, y = 0, r * (height + caption + gap)
        for c, picture in enumerate(row):
            if titles:
                draw.text((x + gap, y + gap), fit(str(titles[r][c]), picture.width - gap), fill="black", font=font)
            sheet.paste(picture, (x, y + caption))
            x += picture.width + gap
    return sheet
