"""Safe image decoding: any stored image becomes (H, W, 3) uint8 RGB, or a clear error.

Conversions (documented policy, applied by every reader):
- grayscale (and grayscale + alpha) images are repeated into three RGB channels;
- the alpha channel of RGBA images is discarded (stimuli are shown opaque);
- 16-bit images are scaled to 8 bits (``round(value / 257)``);
- EXIF orientation is ignored: pixels are used as stored, which is how the fixation
  files of the supported data sets index them.

Unreadable files, truncated JPEGs (no end-of-image marker after the last scan) and
truncated PNGs (no IEND chunk) raise ``ImageDecodeError`` naming the file.

Size limit: decoders allocate what the header declares, so the size is read from the
header first (``tfsal.data.image_header``) and an image of more than
``MAX_IMAGE_PIXELS`` pixels (default 100 million, e.g. 10000 x 10000) is refused
before decoding. Set the environment variable ``TFSAL_MAX_IMAGE_PIXELS`` (read at
import, so it reaches command-line jobs) or assign
``tfsal.data.images.MAX_IMAGE_PIXELS`` to change it. Only formats whose header tfsal
reads (PNG, JPEG, BMP, TIFF, WebP) are decoded.
"""

import os
from pathlib import Path

import cv2
import numpy as np

from tfsal.data.image_header import image_format, image_size_from_header

DEFAULT_MAX_IMAGE_PIXELS = 100_000_000
MAX_IMAGE_PIXELS_VARIABLE = "TFSAL_MAX_IMAGE_PIXELS"

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

_JPEG_START = b"\xff\xd8"
_JPEG_START_OF_SCAN = b"\xff\xda"
_JPEG_END = b"\xff\xd9"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND"


class ImageDecodeError(ValueError):
    """An image file that cannot be read, is truncated or has an unsupported layout."""


def _max_pixels_from_environment() -> int:
    text = os.environ.get(MAX_IMAGE_PIXELS_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_IMAGE_PIXELS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(
            f"{MAX_IMAGE_PIXELS_VARIABLE} must be a positive whole number of pixels. "
            f"Received: {MAX_IMAGE_PIXELS_VARIABLE}={text!r}"
        )
    return value


MAX_IMAGE_PIXELS = _max_pixels_from_environment()


def check_image_size(
    data: bytes, source: str = "<bytes>", max_pixels: int | None = None
) -> tuple[int, int]:
    """Returns the (height, width) that encoded image bytes declare, if within the limit.

    Reads only the header: a caller can refuse an image (an upload, a file of a data
    set) before any decoder allocates its pixels.

    Args:
        data: the encoded image.
        source: names the image in error messages.
        max_pixels: the largest height x width accepted; default ``MAX_IMAGE_PIXELS``.

    Returns:
        The declared (height, width).

    Raises:
        ImageDecodeError: if the format is not PNG, JPEG, BMP, TIFF or WebP, the
            header is malformed, or the image has more than ``max_pixels`` pixels.
    """
    limit = MAX_IMAGE_PIXELS if max_pixels is None else int(max_pixels)
    if image_format(data) is None:
        raise ImageDecodeError(
            f"{source}: not a readable image (not PNG, JPEG, BMP, TIFF or WebP data); "
            "convert it to one of those formats."
        )
    size = image_size_from_header(data)
    if size is None:
        raise ImageDecodeError(f"{source}: the image header is malformed or cut short.")
    height, width = size
    if height * width > limit:
        raise ImageDecodeError(
            f"{source}: the image declares {width}x{height} = {height * width:,} pixels, "
            f"more than the limit of {limit:,}. Shrink the image, or raise the limit with "
            f"the environment variable {MAX_IMAGE_PIXELS_VARIABLE} (or "
            "tfsal.data.images.MAX_IMAGE_PIXELS) if the machine has the memory."
        )
    return height, width


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Reads an image file as (H, W, 3) uint8 RGB.

    Args:
        path: the image file (JPEG, PNG, BMP, TIFF or WebP).

    Returns:
        The RGB image.

    Raises:
        ImageDecodeError: if the file is missing, empty, truncated or not an image.
    """
    return decode_image(_read_bytes(path), source=str(path))


def decode_image(data: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decodes encoded image bytes as (H, W, 3) uint8 RGB.

    Args:
        data: the encoded image.
        source: names the file in error messages.

    Returns:
        The RGB image.
    """
    pixels = _decode(data, source)
    pixels = _to_uint8(pixels, source)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    channels = pixels.shape[-1]
    if channels in (1, 2):
        return np.ascontiguousarray(np.repeat(pixels[..., :1], 3, axis=-1))
    if channels == 3:
        return cv2.cvtColor(pixels, cv2.COLOR_BGR2RGB)
    if channels == 4:
        return cv2.cvtColor(pixels, cv2.COLOR_BGRA2RGB)
    raise ImageDecodeError(f"{source}: unsupported number of channels {channels}.")


def read_map(path: str | os.PathLike) -> np.ndarray:
    """Reads a saliency or fixation map image as (H, W) float32 in [0, 1].

    Colour maps are converted to gray; 8- and 16-bit maps are scaled by their
    maximum code value.

    Args:
        path: the map image.

    Returns:
        The map.
    """
    pixels = _decode(_read_bytes(path), source=str(path))
    scale = np.float32(np.iinfo(pixels.dtype).max) if pixels.dtype.kind == "u" else None
    if scale is None:
        raise ImageDecodeError(f"{path}: unsupported map pixel type {pixels.dtype}.")
    if pixels.ndim == 3:
        pixels = pixels[..., :3].mean(axis=-1, dtype=np.float32)
    values = pixels.astype(np.float32, copy=False)  # the one full-size float copy
    values /= scale
    return values


def encode_png(image: np.ndarray) -> bytes:
    """Encodes an (H, W, 3) uint8 RGB image as lossless PNG bytes."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ImageDecodeError("OpenCV could not encode the image as PNG.")
    return encoded.tobytes()


def list_images(folder: Path, recursive: bool = False) -> list[Path]:
    """Returns the image files in ``folder``, sorted by path.

    Args:
        folder: the folder to search.
        recursive: whether to search sub-folders too.
    """
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        path
        for path in candidates
        if path.is_file()
        and path.suffix.lower() in IMAGE_SUFFIXES
        and not path.name.startswith(".")
    )


def _read_bytes(path: str | os.PathLike) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise ImageDecodeError(f"{path}: cannot read the file ({error.strerror}).") from error
    if not data:
        raise ImageDecodeError(f"{path}: the file is empty.")
    return data


def _decode(data: bytes, source: str) -> np.ndarray:
    _check_complete(data, source)
    check_image_size(data, source)
    try:
        pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as error:  # e.g. beyond OpenCV's own OPENCV_IO_MAX_IMAGE_PIXELS
        message = str(error).strip().splitlines()[-1]
        raise ImageDecodeError(f"{source}: OpenCV cannot decode the image ({message}).") from error
    if pixels is None or pixels.size == 0:
        raise ImageDecodeError(f"{source}: not a readable image (unknown format or corrupt data).")
    return pixels


def _check_complete(data: bytes, source: str) -> None:
    if data.startswith(_JPEG_START):
        # Entropy-coded JPEG data stuffs every 0xFF with 0x00, so an end-of-image
        # marker after the last start-of-scan exists only if the file is complete.
        last_scan = data.rfind(_JPEG_START_OF_SCAN)
        if last_scan < 0 or data.find(_JPEG_END, last_scan) < 0:
            raise ImageDecodeError(
                f"{source}: truncated JPEG (no end-of-image marker); re-download or "
                "re-export the file."
            )
    elif data.startswith(_PNG_SIGNATURE) and data.rfind(_PNG_END) < 0:
        raise ImageDecodeError(
            f"{source}: truncated PNG (no IEND chunk); re-download or re-export the file."
        )


def _to_uint8(pixels: np.ndarray, source: str) -> np.ndarray:
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype == np.uint16:
        # round(value / 257) straight into uint8: no full-size float copy. No value
        # lies within rounding error of a half (v / 257 has fractions k / 257).
        return cv2.convertScaleAbs(pixels, alpha=1.0 / 257.0)
    raise ImageDecodeError(
        f"{source}: unsupported pixel type {pixels.dtype}; convert the image to 8- or 16-bit."
    )
