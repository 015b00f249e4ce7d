"""In-graph image decoding and canvas fitting for the exported signatures.

Everything here is plain TensorFlow ops (no Python at serving time), so it runs in
``tensorflow_model_server`` as well as in any process that loads the SavedModel.

Decoding refuses bad bytes with an ``InvalidArgumentError`` naming the image and what
to do (TF Serving answers it with HTTP 400 / gRPC INVALID_ARGUMENT): bytes that are
neither JPEG nor PNG, truncated files, and images whose *header* declares more than
``max_pixels`` pixels: the size is read from the JPEG or PNG header before any pixel
is decoded, so a small file declaring a huge image (a decompression bomb) costs
nothing.

The canvas geometry and resampling are those of ``tfsal.data.targets`` (the training
inputs): ``"pad"`` scales by one factor and centres the image on a black canvas,
``"stretch"`` scales each axis; area averaging when shrinking, bilinear otherwise.
"""

import tensorflow as tf

_JPEG_MAGIC = b"\xff\xd8\xff"
_JPEG_START_OF_SCAN = b"\xff\xda"
_JPEG_END = b"\xff\xd9"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND"
# Width and height are the big-endian uint32s at bytes 16-23 (the IHDR chunk).
_PNG_SIZE_OFFSET = 16


def check(condition: tf.Tensor, *parts) -> tf.Operation:
    """An in-graph check failing with InvalidArgument and ``parts`` joined as message."""
    # One readable sentence (tf.strings.format would quote strings and bracket lists).
    pieces = [p if isinstance(p, str) else tf.strings.as_string(p) for p in parts]
    message = tf.strings.join(pieces) if len(pieces) > 1 else pieces[0]
    return tf.debugging.Assert(condition, [message], name="check_input")


def _contains(data: tf.Tensor, pattern: bytes) -> tf.Tensor:
    return tf.size(tf.strings.split(data, sep=pattern, maxsplit=1)) > 1


def _jpeg_complete(data: tf.Tensor) -> tf.Tensor:
    # Entropy-coded data stuffs every 0xFF with 0x00, so an end-of-image marker after
    # the first start-of-scan exists only if the file was not cut short.
    after_scan = tf.strings.split(data, sep=_JPEG_START_OF_SCAN, maxsplit=1)
    return tf.logical_and(tf.size(after_scan) > 1, _contains(after_scan[-1], _JPEG_END))


def _png_size(data: tf.Tensor) -> tf.Tensor:
    padded = tf.strings.join([data, b"\x00" * (_PNG_SIZE_OFFSET + 8)])  # short files
    header = tf.io.decode_raw(tf.strings.substr(padded, _PNG_SIZE_OFFSET, 8), tf.uint8)
    values = tf.reshape(tf.cast(header, tf.int64), (2, 4))
    width, height = tf.unstack(tf.reduce_sum(values * [2**24, 2**16, 2**8, 1], axis=1))
    return tf.stack([height, width])


def image_size(data: tf.Tensor, index: tf.Tensor, max_pixels: int, max_side: int) -> tf.Tensor:
    """Checks one encoded image and returns its (height, width) from the header.

    Args:
        data: scalar tf.string, the encoded image.
        index: scalar int32, the image's position in the batch (for messages).
        max_pixels: refuse images whose header declares more pixels.
        max_side: refuse images whose header declares a longer side.

    Returns:
        int64 (2,) tensor (height, width), computed after all checks passed.
    """
    is_jpeg = tf.equal(tf.strings.substr(data, 0, 3), _JPEG_MAGIC)
    is_png = tf.equal(tf.strings.substr(data, 0, 8), _PNG_MAGIC)
    known = check(
        tf.logical_or(is_jpeg, is_png),
        "image_bytes[",
        index,
        "] is neither a JPEG nor a PNG image (send the encoded file's raw bytes; REST "
        'clients send them base64-encoded as {"b64": ...}).',
    )
    with tf.control_dependencies([known]):
        complete = tf.cond(is_jpeg, lambda: _jpeg_complete(data), lambda: _contains(data, _PNG_END))
        whole = check(
            complete,
            "image_bytes[",
            index,
            "] is a truncated ",
            tf.where(is_jpeg, "JPEG", "PNG"),
            " file (no end-of-image marker); send the complete file.",
        )
    with tf.control_dependencies([whole]):
        size = tf.cond(
            is_jpeg,
            lambda: tf.cast(tf.io.extract_jpeg_shape(data)[:2], tf.int64),
            lambda: _png_size(data),
        )
        height, width = size[0], size[1]
        acceptable = tf.reduce_all(
            [
                height >= 1,
                width >= 1,
                height <= max_side,
                width <= max_side,
                height * width <= max_pixels,
            ]
        )
        small = check(
            acceptable,
            "image_bytes[",
            index,
            "] declares ",
            height,
            "x",
            width,
            f" pixels; images may have at most {max_pixels} pixels and sides of at most "
            f"{max_side}: resize it first.",
        )
    with tf.control_dependencies([small]):
        return tf.identity(size)


def decode_rgb(data: tf.Tensor) -> tf.Tensor:
    """Decodes a checked JPEG/PNG (grey, RGBA, 16-bit handled) to uint8 (H, W, 3)."""
    image = tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False)
    image.set_shape((None, None, 3))
    return image


def canvas_geometry(
    height: tf.Tensor, width: tf.Tensor, canvas_size: tuple[int, int], resize: str
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """Where an image of (height, width) lands on the model's canvas.

    The same arithmetic as ``tfsal.data.targets.resize_geometry`` (float64, rounding
    half to even like Python's ``round``).

    Returns:
        int32 scalars (top, left, content_height, content_width).
    """
    canvas_height, canvas_width = canvas_size
    if resize == "stretch":
        return 0, 0, tf.constant(canvas_height), tf.constant(canvas_width)
    height, width = tf.cast(height, tf.float64), tf.cast(width, tf.float64)
    scale = tf.minimum(canvas_height / height, canvas_width / width)

    def fit(side, limit):
        return tf.cast(tf.clip_by_value(tf.round(side * scale), 1.0, limit), tf.int32)

    content_height, content_width = fit(height, canvas_height), fit(width, canvas_width)
    top = (canvas_height - content_height) // 2
    left = (canvas_width - content_width) // 2
    return top, left, content_height, content_width


def _resample(images: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    # cv2.INTER_AREA when both sides shrink (what the training inputs used), else
    # bilinear with half-pixel centres (cv2.INTER_LINEAR).
    shrinking = tf.reduce_all(size < tf.shape(images)[1:3])
    return tf.cond(
        shrinking,
        lambda: tf.image.resize(images, size, method="area"),
        lambda: tf.image.resize(images, size, method="bilinear"),
    )


def to_canvas(images: tf.Tensor, canvas_size: tuple[int, int], resize: str) -> tf.Tensor:
    """Fits a batch of same-size float images onto the model's (h, w) canvas."""
    shape = tf.shape(images)
    top, left, content_height, content_width = canvas_geometry(
        shape[1], shape[2], canvas_size, resize
    )
    content = _resample(images, tf.stack([content_height, content_width]))
    canvas_height, canvas_width = canvas_size
    padding = [
        [0, 0],
        [top, canvas_height - content_height - top],
        [left, canvas_width - content_width - left],
        [0, 0],
    ]
    canvas = tf.pad(content, padding)
    return tf.ensure_shape(canvas, (None, canvas_height, canvas_width, None))


def from_canvas(
    maps: tf.Tensor, height: tf.Tensor, width: tf.Tensor, canvas_size: tuple[int, int], resize: str
) -> tf.Tensor:
    """Crops (batch, h, w, C) canvas maps to the image and resizes them to (H, W)."""
    top, left, content_height, content_width = canvas_geometry(height, width, canvas_size, resize)
    content = maps[:, top : top + content_height, left : left + content_width]
    size = tf.stack([tf.cast(height, tf.int32), tf.cast(width, tf.int32)])
    return tf.image.resize(content, size, method="bilinear")
