"""Image loading (EXIF, alpha, grayscale, 16-bit), resizing rules and atomic saving."""

import re

import numpy as np
import pytest
from conftest import CONTENT, STYLE, main
from PIL import Image

from nst_jax import Config
from nst_jax.errors import InputError
from nst_jax.io import images
from nst_jax.run import inputs


def test_exif_orientation_is_applied(tmp_path):
    rgb = np.zeros((10, 20, 3), np.uint8)
    rgb[:, :10] = [255, 0, 0]  # left half red
    rgb[:, 10:] = [0, 0, 255]  # right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(rgb).save(tmp_path / "rot.jpg", exif=exif, quality=100)
    img = images.load(tmp_path / "rot.jpg")
    assert img.shape == (20, 10, 3) and img.dtype == np.float32
    assert img[2, 5, 0] > 0.9 and img[2, 5, 2] < 0.1  # the left side is now on top
    assert img[17, 5, 2] > 0.9 and img[17, 5, 0] < 0.1


def test_png_alpha_is_composited_over_white(tmp_path):
    rgba = np.zeros((1, 3, 4), np.uint8)
    rgba[0] = [[255, 0, 0, 255], [255, 0, 0, 0], [0, 0, 0, 102]]  # opaque red, transparent, 40% black
    Image.fromarray(rgba).save(tmp_path / "a.png")
    img = images.load(tmp_path / "a.png")
    np.testing.assert_allclose(img[0], [[1, 0, 0], [1, 1, 1], [0.6, 0.6, 0.6]], atol=1e-6)


def test_grayscale_and_palette(tmp_path):
    Image.fromarray(np.array([[0, 51, 255]], np.uint8)).save(tmp_path / "g.png")
    np.testing.assert_allclose(images.load(tmp_path / "g.png")[0], [[0] * 3, [0.2] * 3, [1] * 3], atol=1e-6)
    Image.fromarray(np.array([[[0, 255, 0]]], np.uint8)).convert("P").save(tmp_path / "p.gif")
    np.testing.assert_allclose(images.load(tmp_path / "p.gif")[0, 0], [0, 1, 0], atol=1e-6)


def test_16_bit_keeps_its_precision(tmp_path):
    values = np.array([[0, 1000, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "d.png")
    img = images.load(tmp_path / "d.png")
    np.testing.assert_allclose(img[0, :, 1], values[0] / 65535.0, rtol=1e-6)  # 1000/65535 is no 8-bit level


@pytest.mark.parametrize("name,content,match", [
    ("missing.png", None, "not found"),
    ("text.png", b"hello, not an image", "not an image file"),
    ("cut.png", "truncated", "cannot read image"),
])
def test_bad_images_give_one_line_errors(tmp_path, name, content, match):
    path = tmp_path / name
    if content == "truncated":
        Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 7).save(tmp_path / "good.png")
        path.write_bytes((tmp_path / "good.png").read_bytes()[:60])
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError) as info:
        images.load(path)
    assert match in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(InputError, match="folder"):
        images.load(tmp_path)


def test_resize_rules():
    img = np.random.default_rng(0).random((30, 40, 3)).astype(np.float32)
    same = images.resize_longer_side(img, 40)
    np.testing.assert_array_equal(same, img)  # already at size: no resampling at all
    assert images.resize_longer_side(img, 20).shape == (15, 20, 3)
    assert images.resize_longer_side(img, 80).shape == (60, 80, 3)
    assert images.target_shape((768, 1024), 512) == (384, 512)
    np.testing.assert_array_equal(images.resize_longer_side(img, None), img)
    up = images.resize(np.full((4, 4, 3), 0.5, np.float32), (9, 7))
    np.testing.assert_allclose(up, 0.5, atol=1e-5)  # a constant stays constant


def test_save_round_trip_png_and_jpeg(tmp_path):
    img = np.random.default_rng(0).random((8, 12, 3)).astype(np.float32)
    images.save(img, tmp_path / "o.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "o.png")), images.to_uint8(img))
    images.save(np.clip(img * 2 - 0.5, -1, 2), tmp_path / "o.jpg")  # out-of-range values are clipped
    assert Image.open(tmp_path / "o.jpg").format == "JPEG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.jpg", "o.png"]


def test_failed_save_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    out = tmp_path / "o.png"
    out.write_bytes(b"the old good output")

    def broken_save(self, fp, *args, **kwargs):
        with open(fp, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(InputError, match=re.escape(f"{out}: cannot write the image (disk full)")):
        images.save(np.zeros((4, 4, 3)), out)
    assert out.read_bytes() == b"the old good output"
    assert [p.name for p in tmp_path.iterdir()] == ["o.png"]


def test_output_path_checks(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        images.check_output_path(tmp_path / "no" / "such" / "o.png")
    with pytest.raises(InputError, match="unsupported output format"):
        images.check_output_path(tmp_path / "o.bmpx")


def test_an_image_over_the_pixel_limit_is_refused_from_its_header(tmp_path, monkeypatch):
    """Issue 37 defect 6: the header's size is checked before decoding (before: a 144 Mpx 16-bit PNG of 280 KB
    was decoded in full as float32, 6.9 GB). The decoder is never called for a refused image."""
    path = tmp_path / "wide.png"
    Image.fromarray(np.zeros((30, 40), np.uint16)).save(path)
    decoded = []
    real_load = Image.Image.load
    monkeypatch.setattr(Image.Image, "load", lambda self: (decoded.append(1), real_load(self))[1])
    with pytest.raises(InputError, match=re.escape(f"{path}: 40x30 is 1200 pixels, more than the limit of 1000 "
                                                   "(raise it with --max-input-pixels")):
        images.load(path, max_pixels=1000)
    assert decoded == []
    assert images.load(path, max_pixels=1200).shape == (30, 40, 3)  # at the limit: read
    with pytest.raises(InputError, match="40x30 is 1200 pixels, more than the limit of 500"):  # past Pillow's 2x
        images.load(path, max_pixels=500)


def test_a_large_image_is_reduced_while_decoding_to_twice_the_size_needed(tmp_path):
    """An 8-bit RGB 400x300 image needed at 50 px is decoded and averaged over 4x4 blocks (to 100x75, twice the
    need), which equals the block mean computed here by hand; a 16-bit one keeps its precision through the
    reduction; an image less than 4x larger than needed is read as it is."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (300, 400, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "rgb.png")
    reduced = images.load(tmp_path / "rgb.png", longer_side=50)
    blocks = pixels.astype(np.float64).reshape(75, 4, 100, 4, 3).mean(axis=(1, 3))
    assert reduced.shape == (75, 100, 3)
    np.testing.assert_allclose(reduced * 255, blocks, atol=0.51)  # Pillow rounds the mean to 8 bits
    deep = rng.integers(0, 65536, (300, 400), dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "gray16.png")
    blocks16 = deep.astype(np.float64).reshape(75, 4, 100, 4).mean(axis=(1, 3)) / 65535
    np.testing.assert_allclose(images.load(tmp_path / "gray16.png", longer_side=50)[..., 0], blocks16, atol=1e-4)
    assert images.load(tmp_path / "rgb.png", longer_side=101).shape == (300, 400, 3)  # 400 // 202 = 1


def test_a_large_jpeg_is_decoded_at_a_reduced_scale(tmp_path):
    """JPEG's DCT scaling (`draft`): a 1600x1200 JPEG needed at 100 px decodes at 1/8 scale (200x150, never below
    twice the need), close to the full decode's 8x8 block means."""
    yy, xx = np.mgrid[0:1200, 0:1600]
    smooth = np.stack([xx / 1600, yy / 1200, (xx + yy) / 2800], axis=-1)
    Image.fromarray(np.round(smooth * 255).astype(np.uint8)).save(tmp_path / "big.jpg", quality=95)
    small = images.load(tmp_path / "big.jpg", longer_side=100)
    assert small.shape == (150, 200, 3)
    full = images.load(tmp_path / "big.jpg")
    assert full.shape == (1200, 1600, 3)
    assert np.abs(small - full.reshape(150, 8, 200, 8, 3).mean(axis=(1, 3))).mean() < 0.01


def test_an_input_over_the_pixel_limit_is_one_line_before_any_work(h5_files, image_files, tmp_path, capsys):
    """--max-input-pixels (default 10^8) is checked from each image's header (issue 37 defect 6)."""
    out = tmp_path / "o.png"
    code = main(["--content", image_files["content"], "--style", image_files["style"], "--output", out,
                 "--weights", h5_files["legacy"], "--size", 32, "--max-input-pixels", 3000, "--quiet"])
    err = capsys.readouterr().err
    assert code == 1 and not out.exists() and len(err.strip().splitlines()) == 1
    assert f"{image_files['content']}: 64x48 is 3072 pixels, more than the limit of 3000" in err


def test_uint8_arrays_are_read_as_loading_reads_them_and_out_of_range_floats_are_refused(tmp_path):
    """A uint8 array (np.asarray of a Pillow image) means what the same image loaded from a file means; a small
    overshoot of [0, 1] is clipped; floats in 0..255 or [-1, 1], non-finite floats and other dtypes are errors
    rather than a run on a different image."""
    from PIL import Image

    from nst_jax.io import images

    pixels = (CONTENT * 255).round().astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "c.png")
    from_array = inputs.prepare_images(pixels, STYLE, Config(size=64))[0]
    np.testing.assert_array_equal(from_array, images.load(tmp_path / "c.png"))
    np.testing.assert_allclose(from_array, pixels / 255.0, atol=1e-7)
    overshoot = np.where(CONTENT > 0.5, CONTENT + 0.2, CONTENT - 0.2)
    np.testing.assert_array_equal(inputs.prepare_images(overshoot, STYLE, Config(size=64))[0],
                                  np.clip(overshoot, 0, 1).astype(np.float32))
    for bad, message in [(pixels.astype(np.float32), "lie in [0, 255]"), (CONTENT * 2 - 1, "RGB must be in [0, 1]"),
                         (np.where(CONTENT > 0.5, np.nan, CONTENT), "NaN"), (pixels.astype(np.int32), "dtype int32")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            inputs.prepare_images(bad, STYLE, Config(size=64))
    with pytest.raises(ValueError, match="style image"):
        inputs.prepare_images(CONTENT, STYLE * 255, Config(size=64))
