"""cvkit.data._images: the one safe image reader."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from cvkit.data import ImageReadError, check_image, open_image, read_image
from tests.support.corpus import checksums, huge_png_header, make_corpus, two_colour


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    return root, make_corpus(root)


@pytest.mark.parametrize("name", ["jpeg", "unicode", "space_png", "upper_jpeg", "bmp", "gif", "webp",
                                  "tiff", "cmyk", "gray16", "palette_alpha", "rotated", "rgba", "gray",
                                  "nested"])
def test_every_good_image_reads_as_rgb_uint8(corpus, name):
    _, p = corpus
    img = read_image(p[name])
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    resized = read_image(p[name], size=(30, 20))
    assert resized.shape == (20, 30, 3)


def test_exif_orientation_is_applied(corpus):
    _, p = corpus
    img = read_image(p["rotated"])
    assert img.shape[:2] == (40, 20)  # stored 40 wide x 20 high, displayed rotated 90 degrees
    top, bottom = img[:15].reshape(-1, 3).mean(0), img[-15:].reshape(-1, 3).mean(0)
    assert top[0] > 200 and top[2] < 60, top          # left (red) half is now on top
    assert bottom[2] > 200 and bottom[0] < 60, bottom


def test_cmyk_comes_out_as_the_right_rgb(corpus):
    _, p = corpus
    mean = read_image(p["cmyk"]).reshape(-1, 3).mean(0)
    assert abs(mean[0] - 200) < 12 and mean[1] < 50 and mean[2] < 50, mean


def test_16_bit_is_scaled_to_8_bit(corpus):
    _, p = corpus
    img = read_image(p["gray16"])
    assert img[..., 0].min() <= 2 and img[..., 0].max() >= 253
    assert (img[..., 0] == img[..., 1]).all()


def test_transparency_is_flattened_onto_white(corpus):
    _, p = corpus
    img = read_image(p["palette_alpha"])
    assert tuple(img[10, 15]) == (255, 255, 255)   # transparent half
    assert tuple(img[10, 2]) == (255, 0, 0)        # opaque red half
    assert (read_image(p["rgba"]) == 255).all()


@pytest.mark.parametrize("name,reason", [("truncated", "truncated"), ("zero", "empty file"),
                                          ("text", "not an image"), ("bomb", "too large")])
def test_bad_files_raise_a_clear_error_naming_the_file(corpus, name, reason):
    _, p = corpus
    with pytest.raises(ImageReadError) as info:
        read_image(p[name], size=224)
    assert str(p[name]) in str(info.value)
    assert reason in info.value.reason
    assert check_image(p[name]) is not None and reason in check_image(p[name])


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ImageReadError, match="file not found"):
        read_image(tmp_path / "nope.jpg")


def test_decompression_bomb_limit_is_checked_before_decoding():
    data = huge_png_header(100_000, 100_000)
    with pytest.raises(ImageReadError, match="decompression bomb"):
        read_image(data)
    small = io.BytesIO(); Image.new("RGB", (20, 20)).save(small, "PNG")
    with pytest.raises(ImageReadError, match="too large"):
        read_image(small.getvalue(), max_pixels=100)


def test_bytes_and_streams_are_accepted():
    buf = io.BytesIO(); two_colour(40, 20).save(buf, "PNG")
    a = read_image(buf.getvalue())
    buf.seek(0)
    b = read_image(buf)
    assert a.shape == (20, 40, 3) and (a == b).all()
    with pytest.raises(ImageReadError, match="empty"):
        read_image(b"")


def test_jpeg_draft_mode_decodes_large_photos_at_reduced_scale(tmp_path):
    path = tmp_path / "big.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (1500, 2000, 3), np.uint8)).save(path)
    assert open_image(path, size=224).size[0] <= 500          # decoded at 1/4 scale, not 2000 wide
    assert open_image(path).size == (2000, 1500)               # no size hint: full resolution
    out = read_image(path, size=224)
    assert out.shape == (224, 224, 3)
    # the draft-decoded result is close to a full decode resized the plain way
    plain = np.asarray(Image.open(path).convert("RGB").resize((224, 224), Image.Resampling.BILINEAR))
    assert np.abs(out.astype(int) - plain.astype(int)).mean() < 25


def test_reading_never_modifies_files(tmp_path):
    root = tmp_path / "c"
    p = make_corpus(root)
    before = checksums(root)
    for path in p.values():
        try:
            read_image(path, size=64)
        except ImageReadError:
            pass
        check_image(path)
    assert checksums(root) == before
