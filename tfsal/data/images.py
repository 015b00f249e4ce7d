"""Safe image decoding: any stored image becomes (H, W, 3) uint8 RGB, or a clear error.

Conversions (documented policy, applied by every reader):
- grayscale (and grayscale + alpha) images are repeated into three RGB channels;
- the alpha channel of RGBA images is discarded (stimuli are shown opaque);
- 16-bit images are scaled to 8 bits (``round(value / 257)``);
- EXIF orientation is ignored: pixels are used as stored, which is how the fixation
  files of the supported data sets index them.

Unreadable files, truncated JPEGs (no end-of-image marker after the last scan) and
truncated PNGs (no IEND chunk) raise ``ImageDecodeError`` naming the file.
"""

import os
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

_JPEG_START = b"\xff\xd8"
_JPEG_START_OF_SCAN = b"\xff\xda"
_JPEG_END = b"\xff\xd9"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND"


class ImageDecodeError(ValueError):
    """An image file that cannot be read, is truncated or has an unsupported layout."""


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
        pixels = pixels[..., :3].astype(np.float32).mean(axis=-1)
    return pixels.astype(np.float32) / scale


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
    pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
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
        return np.rint(pixels.astype(np.float32) / 257.0).astype(np.uint8)
    raise ImageDecodeError(
        f"{source}: unsupported pixel type {pixels.dtype}; convert the image to 8- or 16-bit."
    )
