"""Image sizes read from the encoded header, before any pixel is decoded.

Decoders allocate what the header declares: a 2.6 MB PNG that declares 30000 x 30000
pixels made OpenCV allocate 6 GB. ``image_size_from_header`` reads the declared
(height, width) of the formats tfsal decodes (PNG, JPEG, BMP, TIFF, WebP) from the
first bytes of the file, so callers can refuse an image before decoding it
(``tfsal.data.images.check_image_size``). It never decodes and never allocates more
than the header it reads.
"""

import struct

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8"

# Start-of-frame markers (baseline, extended, progressive, lossless, arithmetic);
# 0xC4 (DHT), 0xC8 (JPG) and 0xCC (DAC) share the range but carry no frame header.
_JPEG_START_OF_FRAME = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_START_OF_SCAN = 0xDA
# Markers without a length field: TEM, RSTn, SOI, EOI.
_JPEG_STANDALONE = frozenset([0x01, *range(0xD0, 0xDA)])
_JPEG_MAX_MARKERS = 10_000
_TIFF_WIDTH_TAG, _TIFF_HEIGHT_TAG = 256, 257
_TIFF_SHORT, _TIFF_LONG = 3, 4


def image_format(data: bytes) -> str | None:
    """Returns "png", "jpeg", "bmp", "tiff" or "webp" from the signature, or None."""
    if data.startswith(PNG_SIGNATURE):
        return "png"
    if data.startswith(JPEG_SIGNATURE):
        return "jpeg"
    if data.startswith(b"BM"):
        return "bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def image_size_from_header(data: bytes) -> tuple[int, int] | None:
    """Returns the (height, width) an encoded image declares, without decoding it.

    Args:
        data: the encoded image (the whole file, or at least its header).

    Returns:
        The declared (height, width), or None when the format is not one of
        ``image_format``'s or the header is cut short or malformed.
    """
    reader = _READERS.get(image_format(data))
    if reader is None:
        return None
    try:
        size = reader(memoryview(data))
    except (struct.error, IndexError):  # a header cut short
        return None
    if size is None or min(size) <= 0:
        return None
    return size


def _png_size(data: memoryview) -> tuple[int, int] | None:
    # The IHDR chunk must come first: length, "IHDR", width, height (big-endian).
    if bytes(data[12:16]) != b"IHDR":
        return None
    width, height = struct.unpack_from(">II", data, 16)
    return height, width


def _jpeg_size(data: memoryview) -> tuple[int, int] | None:
    position = 2
    # Real files hold a few dozen segments before the frame header; the bound keeps
    # a crafted file of millions of empty segments from costing seconds here.
    for _ in range(_JPEG_MAX_MARKERS):
        if position + 4 > len(data):
            return None
        if data[position] != 0xFF:
            return None  # not at a marker: malformed
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker in _JPEG_STANDALONE:
            position += 2
            continue
        if marker == _JPEG_START_OF_SCAN:
            return None  # compressed data before any frame header
        (length,) = struct.unpack_from(">H", data, position + 2)
        if marker in _JPEG_START_OF_FRAME:
            # Segment: length (2), sample precision (1), height (2), width (2).
            height, width = struct.unpack_from(">HH", data, position + 5)
            return height, width
        position += 2 + length
    return None


def _bmp_size(data: memoryview) -> tuple[int, int] | None:
    (header_size,) = struct.unpack_from("<I", data, 14)
    if header_size == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        width, height = struct.unpack_from("<HH", data, 18)
    else:  # BITMAPINFOHEADER and later: signed 32-bit, negative height = top-down
        width, height = struct.unpack_from("<ii", data, 18)
    return abs(height), width


def _tiff_size(data: memoryview) -> tuple[int, int] | None:
    order = "<" if bytes(data[:2]) == b"II" else ">"
    (offset,) = struct.unpack_from(order + "I", data, 4)
    (count,) = struct.unpack_from(order + "H", data, offset)
    found = {}
    for entry in range(count):
        tag, kind, _, value = struct.unpack_from(order + "HHI4s", data, offset + 2 + 12 * entry)
        if tag in (_TIFF_WIDTH_TAG, _TIFF_HEIGHT_TAG) and kind in (_TIFF_SHORT, _TIFF_LONG):
            code = "H" if kind == _TIFF_SHORT else "I"
            found[tag] = struct.unpack_from(order + code, value)[0]
    if _TIFF_WIDTH_TAG not in found or _TIFF_HEIGHT_TAG not in found:
        return None
    return found[_TIFF_HEIGHT_TAG], found[_TIFF_WIDTH_TAG]


def _webp_size(data: memoryview) -> tuple[int, int] | None:
    chunk = bytes(data[12:16])
    if chunk == b"VP8 ":  # lossy: 14-bit sizes after the key-frame start code
        width, height = struct.unpack_from("<HH", data, 26)
        return height & 0x3FFF, width & 0x3FFF
    if chunk == b"VP8L":  # lossless: 14-bit sizes minus one, packed after 0x2F
        (bits,) = struct.unpack_from("<I", data, 21)
        return ((bits >> 14) & 0x3FFF) + 1, (bits & 0x3FFF) + 1
    if chunk == b"VP8X":  # extended: 24-bit sizes minus one
        width, height = struct.unpack_from("<3s3s", data, 24)
        return int.from_bytes(height, "little") + 1, int.from_bytes(width, "little") + 1
    return None


_READERS = {
    "png": _png_size,
    "jpeg": _jpeg_size,
    "bmp": _bmp_size,
    "tiff": _tiff_size,
    "webp": _webp_size,
}
