import os
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib

import cv2
import numpy as np
import pytest

from tfsal.data import images
from tfsal.data.image_header import image_size_from_header
from tfsal.data.images import ImageDecodeError


def _png_declaring(height: int, width: int) -> bytes:
    """A complete PNG whose header declares height x width but holds one row."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\0" * (width + 1))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".tif", ".webp"])
@pytest.mark.parametrize("channels", [1, 3])
def test_header_size_matches_the_decoded_size(suffix, channels):
    pixels = np.random.default_rng(0).integers(0, 256, (7, 13, channels), dtype=np.uint8)
    ok, encoded = cv2.imencode(suffix, pixels.squeeze())
    assert ok
    assert image_size_from_header(encoded.tobytes()) == (7, 13)


def test_lossless_webp_and_progressive_jpeg_headers():
    pixels = np.zeros((300, 17, 3), np.uint8)
    _, lossless = cv2.imencode(".webp", pixels, [cv2.IMWRITE_WEBP_QUALITY, 101])
    _, progressive = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])
    assert image_size_from_header(lossless.tobytes()) == (300, 17)
    assert image_size_from_header(progressive.tobytes()) == (300, 17)


def test_cut_or_unknown_headers_give_none():
    _, encoded = cv2.imencode(".png", np.zeros((5, 5), np.uint8))
    assert image_size_from_header(encoded.tobytes()[:20]) is None
    assert image_size_from_header(b"\xff\xd8\xff\xda" + b"\0" * 20) is None  # scan, no frame
    assert image_size_from_header(b"GIF89a" + b"\0" * 20) is None
    assert image_size_from_header(b"") is None


def test_huge_declared_image_is_refused_before_decoding():
    data = _png_declaring(30000, 30000)
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(ImageDecodeError, match="declares 30000x30000 = 900,000,000 pixels"):
        images.decode_image(data, source="bomb.png")
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert elapsed < 1.0 and peak < 1_000_000


def test_check_image_size_takes_bytes_and_a_limit():
    data = _png_declaring(20, 30)
    assert images.check_image_size(data) == (20, 30)
    assert images.check_image_size(data, max_pixels=600) == (20, 30)
    with pytest.raises(ImageDecodeError, match="upload: .* more than the limit of 599"):
        images.check_image_size(data, source="upload", max_pixels=599)
    with pytest.raises(ImageDecodeError, match="not a readable image"):
        images.check_image_size(b"GIF89a" + b"\0" * 20)
    with pytest.raises(ImageDecodeError, match="header is malformed"):
        images.check_image_size(data[:20])


def test_the_module_limit_applies_to_readers(tmp_path, monkeypatch):
    path = tmp_path / "wide.png"
    ok, encoded = cv2.imencode(".png", np.zeros((10, 20, 3), np.uint8))
    path.write_bytes(encoded.tobytes())
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 199)
    with pytest.raises(ImageDecodeError, match="wide.png: the image declares 20x10"):
        images.read_image(path)
    with pytest.raises(ImageDecodeError, match="wide.png"):
        images.read_map(path)


def test_opencv_refusal_beyond_its_own_limit_is_an_image_decode_error(monkeypatch):
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 10**12)
    with pytest.raises(ImageDecodeError, match="huge.png: OpenCV cannot decode"):
        images.decode_image(_png_declaring(40000, 40000), source="huge.png")


def test_environment_variable_is_parsed(monkeypatch):
    monkeypatch.setenv("TFSAL_MAX_IMAGE_PIXELS", "1234")
    assert images._max_pixels_from_environment() == 1234
    for bad in ("lots", "0", "-5", "1e9"):
        monkeypatch.setenv("TFSAL_MAX_IMAGE_PIXELS", bad)
        with pytest.raises(ValueError, match="TFSAL_MAX_IMAGE_PIXELS must be a positive"):
            images._max_pixels_from_environment()
    monkeypatch.delenv("TFSAL_MAX_IMAGE_PIXELS")
    assert images._max_pixels_from_environment() == images.DEFAULT_MAX_IMAGE_PIXELS


@pytest.mark.slow  # a fresh process imports TensorFlow
def test_environment_variable_sets_the_limit_at_import():
    code = "from tfsal.data import images; print(images.MAX_IMAGE_PIXELS)"
    run = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "TFSAL_MAX_IMAGE_PIXELS": "1234"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.strip() == "1234"


def test_sixteen_bit_conversion_rounds_and_needs_no_float_copy():
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256)
    deep = np.stack([values, values[::-1], values.T], axis=-1)
    _, encoded = cv2.imencode(".png", deep)
    expected = np.rint(deep.astype(np.float64) / 257.0).astype(np.uint8)
    tracemalloc.start()
    converted = images._to_uint8(deep, "deep.png")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    np.testing.assert_array_equal(converted, expected)
    # The uint8 result alone is deep.size bytes; a float32 copy would be 4x that.
    assert peak < 2 * deep.size
    np.testing.assert_array_equal(images.decode_image(encoded.tobytes()), expected[..., ::-1])


def test_jpeg_header_scan_is_bounded():
    _, encoded = cv2.imencode(".jpg", np.zeros((9, 11), np.uint8))
    body = encoded.tobytes()
    assert image_size_from_header(body[:2] + b"\xff\xe0\x00\x02" * 100 + body[2:]) == (9, 11)
    crafted = body[:2] + b"\xff\xe0\x00\x02" * 1_000_000 + body[2:]
    started = time.perf_counter()
    assert image_size_from_header(crafted) is None
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".tif", ".webp"])
def test_mutated_headers_give_a_size_or_none_never_an_exception(suffix):
    _, encoded = cv2.imencode(suffix, np.zeros((6, 7, 3), np.uint8))
    original = encoded.tobytes()
    rng = np.random.default_rng(0)
    for _ in range(500):
        mutated = bytearray(original[: int(rng.integers(1, len(original) + 1))])
        for position in rng.integers(0, len(mutated), 3):
            mutated[position] = int(rng.integers(256))
        size = image_size_from_header(bytes(mutated))
        assert size is None or (len(size) == 2 and min(size) > 0)
