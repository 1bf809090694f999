"""Image loading (EXIF, alpha, grayscale, 16-bit), resizing rules and atomic saving."""

import re

import numpy as np
import pytest
from PIL import Image

from nst_jax import images
from nst_jax.errors import InputError


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
