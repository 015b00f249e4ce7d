import cv2
import numpy as np
import pytest

from tfsal.data import images
from tfsal.data.images import ImageDecodeError


def _write(path, pixels, suffix=".png"):
    ok, encoded = cv2.imencode(suffix, pixels)
    assert ok
    path.write_bytes(encoded.tobytes())
    return path


def test_colour_image_is_read_as_rgb(tmp_path):
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0] = 200  # red
    path = _write(tmp_path / "red.png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    np.testing.assert_array_equal(images.read_image(path), rgb)


def test_grayscale_is_repeated_into_three_channels(tmp_path):
    gray = np.arange(24, dtype=np.uint8).reshape(4, 6)
    result = images.read_image(_write(tmp_path / "gray.png", gray))
    assert result.shape == (4, 6, 3) and result.dtype == np.uint8
    for channel in range(3):
        np.testing.assert_array_equal(result[..., channel], gray)


def test_rgba_drops_alpha(tmp_path):
    bgra = np.zeros((3, 5, 4), np.uint8)
    bgra[..., 2], bgra[..., 3] = 90, 10  # red, nearly transparent
    result = images.read_image(_write(tmp_path / "rgba.png", bgra))
    assert result.shape == (3, 5, 3)
    np.testing.assert_array_equal(result[..., 0], 90)
    np.testing.assert_array_equal(result[..., 1:], 0)


def test_sixteen_bit_is_scaled_to_eight_bits(tmp_path):
    deep = np.full((4, 4, 3), 65535, np.uint16)
    deep[0, 0] = 257 * 100
    result = images.read_image(_write(tmp_path / "deep.png", deep))
    assert result.dtype == np.uint8
    assert result[0, 0, 0] == 100 and result[1, 1, 1] == 255
    gray16 = np.full((2, 3), 257 * 7, np.uint16)
    assert images.read_image(_write(tmp_path / "gray16.png", gray16)).max() == 7


def test_truncated_jpeg_and_png_raise_naming_the_file(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    for suffix in (".jpg", ".png"):
        full = _write(tmp_path / f"full{suffix}", pixels, suffix).read_bytes()
        cut = tmp_path / f"cut{suffix}"
        cut.write_bytes(full[: len(full) - 40])
        with pytest.raises(ImageDecodeError, match=f"cut\\{suffix}: truncated"):
            images.read_image(cut)


def test_unreadable_missing_and_empty_files_raise(tmp_path):
    (tmp_path / "junk.jpg").write_bytes(b"not an image at all")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageDecodeError, match="junk.jpg: not a readable image"):
        images.read_image(tmp_path / "junk.jpg")
    with pytest.raises(ImageDecodeError, match="empty.png: the file is empty"):
        images.read_image(tmp_path / "empty.png")
    with pytest.raises(ImageDecodeError, match="gone.png: cannot read"):
        images.read_image(tmp_path / "gone.png")


def test_read_map_scales_to_unit_range(tmp_path):
    gray = np.array([[0, 255], [51, 102]], np.uint8)
    np.testing.assert_allclose(images.read_map(_write(tmp_path / "m.png", gray)), gray / 255)
    deep = np.array([[0, 65535]], np.uint16)
    np.testing.assert_allclose(images.read_map(_write(tmp_path / "d.png", deep)), [[0, 1]])


def test_png_round_trip_is_lossless():
    image = np.random.default_rng(1).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    np.testing.assert_array_equal(images.decode_image(images.encode_png(image)), image)
