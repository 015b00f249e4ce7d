"""The region an explanation is about: a box on the model's canvas, and how to find it.

Attribution methods explain one number. For a saliency model that number is the
predicted saliency *mass* inside a region (``serving.region_score.RegionScore``), and
the region is either a box the user gives in the image's own pixels (``--region
x,y,w,h``) or, by default, the most salient box: the window of a fixed fraction of
the image's width and height holding the largest predicted mass.

Boxes live on the model's canvas (the model's input, where ``tfsal.data.targets``
letterboxes or stretches each image), because that is where the model's gradients
are; ``Region.from_image_box`` maps a box given in image pixels onto it.
"""

import dataclasses

import cv2
import numpy as np

from tfsal.data.targets import ResizeGeometry

# The default region is a quarter of the image's width and height: small enough to be
# one object or person in a scene photograph, large enough to hold a fixation cluster.
DEFAULT_REGION_FRACTION = 0.25


@dataclasses.dataclass(frozen=True)
class Region:
    """A box on the model's canvas, in pixels.

    Attributes:
        top: first row.
        left: first column.
        height: number of rows (>= 1).
        width: number of columns (>= 1).
    """

    top: int
    left: int
    height: int
    width: int

    def __post_init__(self):
        if self.height < 1 or self.width < 1 or self.top < 0 or self.left < 0:
            raise ValueError(
                "A region needs top, left >= 0 and height, width >= 1. "
                f"Received: {dataclasses.asdict(self)}"
            )

    def mask(self, shape: tuple[int, int]) -> np.ndarray:
        """The region as a (height, width) float32 mask of the canvas ``shape``."""
        if self.top + self.height > shape[0] or self.left + self.width > shape[1]:
            raise ValueError(f"Region {dataclasses.asdict(self)} does not fit a {shape} canvas.")
        mask = np.zeros(shape, np.float32)
        mask[self.top : self.top + self.height, self.left : self.left + self.width] = 1.0
        return mask

    @classmethod
    def from_image_box(cls, box: tuple[int, int, int, int], geometry: ResizeGeometry) -> "Region":
        """Maps an ``(x, y, w, h)`` box in original image pixels onto the canvas.

        Args:
            box: left column, top row, width and height in the original image.
            geometry: where the image lies on the canvas.

        Raises:
            ValueError: if the box is empty or leaves the image.
        """
        x, y, w, h = (int(value) for value in box)
        image_height = round(geometry.content_height / geometry.scale_row)
        image_width = round(geometry.content_width / geometry.scale_col)
        if w < 1 or h < 1 or x < 0 or y < 0 or x + w > image_width or y + h > image_height:
            raise ValueError(
                f"--region x,y,w,h must be a non-empty box inside the {image_width}x"
                f"{image_height} image. Received: {x},{y},{w},{h}"
            )
        top = geometry.top + int(np.floor(y * geometry.scale_row))
        left = geometry.left + int(np.floor(x * geometry.scale_col))
        bottom = geometry.top + int(np.ceil((y + h) * geometry.scale_row))
        right = geometry.left + int(np.ceil((x + w) * geometry.scale_col))
        return cls(top, left, max(1, bottom - top), max(1, right - left))

    def to_image_box(self, geometry: ResizeGeometry) -> tuple[int, int, int, int]:
        """The ``(x, y, w, h)`` box in original image pixels (rounded outwards)."""
        x = int(np.floor((self.left - geometry.left) / geometry.scale_col))
        y = int(np.floor((self.top - geometry.top) / geometry.scale_row))
        right = int(np.ceil((self.left + self.width - geometry.left) / geometry.scale_col))
        bottom = int(np.ceil((self.top + self.height - geometry.top) / geometry.scale_row))
        return max(0, x), max(0, y), right - max(0, x), bottom - max(0, y)


def parse_box(text: str) -> tuple[int, int, int, int]:
    """Reads ``"x,y,w,h"`` (integers, image pixels).

    Raises:
        ValueError: if the text is not four comma-separated integers.
    """
    parts = text.split(",")
    try:
        values = tuple(int(part) for part in parts)
    except ValueError:
        values = ()
    if len(values) != 4:
        raise ValueError(f"--region must be x,y,w,h (four integers). Received: {text!r}")
    return values


def most_salient_region(
    saliency: np.ndarray,
    geometry: ResizeGeometry,
    fraction: float = DEFAULT_REGION_FRACTION,
) -> Region:
    """The box of ``fraction`` of the image's size holding the largest predicted mass.

    Args:
        saliency: (height, width) saliency on the canvas (a density or a map; a map
            with negative values picks the same box as its shift to a minimum of 0,
            every box having one area); only the image's content window is searched.
        geometry: where the image lies on the canvas.
        fraction: box height and width as fractions of the content's, in (0, 1].

    Returns:
        The region (the first of equal maxima in row-major order).
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1]. Received: fraction={fraction}")
    content = np.asarray(saliency, np.float64)[geometry.content_window]
    height = max(1, round(geometry.content_height * fraction))
    width = max(1, round(geometry.content_width * fraction))
    # Box sums of every window position from one summed-area table.
    table = cv2.integral(content)
    sums = (
        table[height:, width:]
        - table[:-height, width:]
        - table[height:, :-width]
        + table[:-height, :-width]
    )
    row, col = np.unravel_index(int(np.argmax(sums)), sums.shape)
    return Region(geometry.top + int(row), geometry.left + int(col), height, width)
