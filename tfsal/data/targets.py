"""Model inputs and training targets at the model's resolution, in NumPy.

``resize="pad"`` scales the image by one factor so it fits the requested size and
centres it on a black canvas (letterbox); ``resize="stretch"`` scales each axis to the
requested size. The targets follow the image exactly:

- density: the data set's map resized with the image (area averaging when shrinking),
  or the fixations' density made at the new resolution with the default sigma of
  ``tfsal.data.density`` scaled by the same factors; zero on the padding; sums to 1;
- fixation map: 1 at each fixation's scaled location (pixel centres map to pixel
  centres), 0 elsewhere and on the padding.

Both the reader pipeline and the TFRecord pipeline call ``make_example``, so they give
identical tensors; ``serving.predictor`` builds its inputs with the same
``model_input``, so a model sees at prediction the pixels it was trained on.
"""

import dataclasses

import cv2
import numpy as np

from tfsal.data import density as density_lib

RESIZE_MODES = ("pad", "stretch")


@dataclasses.dataclass(frozen=True)
class ResizeGeometry:
    """Where an original image lands on the model's canvas.

    Attributes:
        height: canvas height (the model's input height).
        width: canvas width.
        top: first canvas row covered by the image.
        left: first canvas column covered by the image.
        content_height: canvas rows covered by the image.
        content_width: canvas columns covered by the image.
        scale_row: content_height / original height.
        scale_col: content_width / original width.
    """

    height: int
    width: int
    top: int
    left: int
    content_height: int
    content_width: int
    scale_row: float
    scale_col: float

    @property
    def content_window(self) -> tuple[slice, slice]:
        """The (rows, cols) slices of the canvas that the image covers."""
        return (
            slice(self.top, self.top + self.content_height),
            slice(self.left, self.left + self.content_width),
        )

    def map_fixations(self, fixations: np.ndarray) -> np.ndarray:
        """Maps 0-based original (row, col) fixations to canvas coordinates."""
        fixations = np.asarray(fixations, dtype=np.float64).reshape(-1, 2)
        scales = np.array([self.scale_row, self.scale_col])
        limits = np.array([self.content_height - 1, self.content_width - 1], dtype=np.float64)
        content = np.clip((fixations + 0.5) * scales - 0.5, 0.0, limits)
        return content + np.array([self.top, self.left], dtype=np.float64)


def resize_geometry(
    original_shape: tuple[int, int], image_size: tuple[int, int], resize: str = "pad"
) -> ResizeGeometry:
    """Returns how an image of ``original_shape`` is placed on an ``image_size`` canvas.

    Args:
        original_shape: the original (height, width).
        image_size: the model's (height, width).
        resize: "pad" (keep the aspect ratio, centre, pad with zeros) or "stretch".
    """
    check_resize_arguments(image_size, resize)
    original_height, original_width = int(original_shape[0]), int(original_shape[1])
    height, width = int(image_size[0]), int(image_size[1])
    if resize == "stretch":
        content_height, content_width = height, width
    else:
        scale = min(height / original_height, width / original_width)
        content_height = min(height, max(1, round(original_height * scale)))
        content_width = min(width, max(1, round(original_width * scale)))
    return ResizeGeometry(
        height=height,
        width=width,
        top=(height - content_height) // 2,
        left=(width - content_width) // 2,
        content_height=content_height,
        content_width=content_width,
        scale_row=content_height / original_height,
        scale_col=content_width / original_width,
    )


def check_resize_arguments(image_size: tuple[int, int], resize: str) -> tuple[int, int]:
    """Validates ``image_size`` and ``resize``; returns the size as two ints."""
    if resize not in RESIZE_MODES:
        raise ValueError(f"resize must be one of {RESIZE_MODES}. Received: resize={resize!r}")
    try:
        height, width = (int(value) for value in image_size)
    except (TypeError, ValueError):
        raise ValueError(
            f"image_size must be (height, width). Received: image_size={image_size!r}"
        ) from None
    if height < 1 or width < 1:
        raise ValueError(f"image_size must be positive. Received: image_size={image_size!r}")
    return height, width


def model_input(
    image: np.ndarray, image_size: tuple[int, int], resize: str = "pad"
) -> tuple[np.ndarray, ResizeGeometry]:
    """Returns the model input of one image and where the image lies on it.

    Training (``make_example``) and prediction (``serving.predictor``) both call
    this, so a model sees the same pixels in both.

    Args:
        image: (H, W, 3) RGB image, uint8 (or float in [0, 255]).
        image_size: the model's (height, width).
        resize: "pad" or "stretch".

    Returns:
        (h, w, 3) float32 RGB image in [0, 255] and its ``ResizeGeometry``.
    """
    geometry = resize_geometry(image.shape[:2], image_size, resize)
    canvas = np.zeros((geometry.height, geometry.width, 3), dtype=image.dtype)
    _paste(canvas, _resize(image, geometry), geometry)
    return canvas.astype(np.float32), geometry


def make_example(
    image: np.ndarray,
    fixations: np.ndarray,
    density: np.ndarray | None,
    image_size: tuple[int, int],
    resize: str = "pad",
    image_id: str = "",
) -> tuple[np.ndarray, np.ndarray]:
    """Returns the model input and the (density, fixation map) target of one image.

    Args:
        image: (H, W, 3) uint8 RGB image.
        fixations: (N, 2) 0-based original (row, col) fixations.
        density: (H, W) density from the data set, or None to make it from fixations.
        image_size: the model's (height, width).
        resize: "pad" or "stretch".
        image_id: names the image in error messages.

    Returns:
        (h, w, 3) float32 RGB image in [0, 255] and (h, w, 2) float32 target whose
        channel 0 is the density (sums to 1) and channel 1 the binary fixation map.
    """
    fixations = np.asarray(fixations, dtype=np.float64).reshape(-1, 2)
    if density is None and len(fixations) == 0:
        raise ValueError(
            f"Image {image_id!r} has neither fixations nor a density map, so it has no "
            "training target; leave it out of image_ids."
        )
    canvas_image, geometry = model_input(image, image_size, resize)
    if density is not None:
        content_density = np.maximum(_resize(np.asarray(density, np.float32), geometry), 0.0)
        if content_density.sum() <= 0:
            raise ValueError(f"Image {image_id!r}: the density map vanishes when resized.")
    else:
        content_fixations = geometry.map_fixations(fixations) - (geometry.top, geometry.left)
        counts = density_lib.fixation_counts(
            content_fixations, (geometry.content_height, geometry.content_width)
        )
        sigma = density_lib.default_sigma(image.shape[:2])
        content_density = density_lib.blur_to_density(
            counts, (sigma * geometry.scale_row, sigma * geometry.scale_col)
        )
    target = np.zeros((geometry.height, geometry.width, 2), dtype=np.float32)
    _paste(target[..., :1], content_density[..., None], geometry)
    target[..., 0] /= target[..., 0].sum(dtype=np.float64)
    target[..., 1] = density_lib.fixation_map(
        geometry.map_fixations(fixations), (geometry.height, geometry.width)
    )
    return canvas_image, target


def _resize(array: np.ndarray, geometry: ResizeGeometry) -> np.ndarray:
    shrinking = geometry.content_height < array.shape[0] and geometry.content_width < array.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    size = (geometry.content_width, geometry.content_height)
    if size == (array.shape[1], array.shape[0]):
        return array
    resized = cv2.resize(array, size, interpolation=interpolation)
    return resized.reshape(geometry.content_height, geometry.content_width, *array.shape[2:])


def _paste(canvas: np.ndarray, content: np.ndarray, geometry: ResizeGeometry) -> None:
    canvas[geometry.content_window] = content
