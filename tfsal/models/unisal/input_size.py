"""UNISAL's rule for choosing the network input size of an image.

Droste, Jiao and Noble (ECCV 2020) feed every image at a size of (n1, n2) x 32
pixels whose aspect ratio best matches the image's (UNISAL ``data.py``): for
evaluation and arbitrary images any n1, n2 in [7, 13] with 100 <= n1 * n2 <= 120
(about 110 cells at the 1/32 bottleneck, so run time hardly depends on the aspect
ratio); for MIT1003 fine-tuning one of five fixed grids. SALICON images (480x640)
are fed at 288x384 in both cases.
"""

from collections.abc import Sequence

BOTTLENECK_STRIDE = 32

# (rows, columns) of 32-pixel cells UNISAL trains on for MIT1003.
TRAINING_GRIDS = ((8, 13), (9, 13), (9, 12), (12, 9), (13, 9))


def _evaluation_grids(min_cells=100, max_cells=120, min_side=7, max_side=13):
    return tuple(
        (rows, cols)
        for rows in range(min_side, max_side + 1)
        for cols in range(min_side, max_side + 1)
        if min_cells <= rows * cols <= max_cells
    )


EVALUATION_GRIDS = _evaluation_grids()


def unisal_input_size(image_size: Sequence[int], training: bool = False) -> tuple[int, int]:
    """Returns the (height, width) at which UNISAL processes an image of ``image_size``.

    The grid whose aspect ratio is closest (by the ratio of the smaller to the
    larger aspect ratio) to the image's wins; ties go to the first grid in UNISAL's
    order (rows ascending, then columns).

    Args:
        image_size: (height, width) of the original image, in pixels.
        training: use the five grids of UNISAL's MIT1003 fine-tuning instead of
            the evaluation grids.

    Returns:
        (height, width), multiples of 32.

    Raises:
        ValueError: if ``image_size`` is not two positive numbers.

    Example:
        >>> unisal_input_size((768, 1024))
        (288, 384)
        >>> unisal_input_size((1080, 1920))
        (256, 416)
    """
    if len(image_size) != 2 or not all(side > 0 for side in image_size):
        raise ValueError(
            "image_size must be (height, width) with positive sides. "
            f"Received: image_size={tuple(image_size)}"
        )
    height, width = image_size
    aspect_ratio = height / width
    grids = TRAINING_GRIDS if training else EVALUATION_GRIDS

    def match(grid):
        grid_ratio = grid[0] / grid[1]
        return min(aspect_ratio, grid_ratio) / max(aspect_ratio, grid_ratio)

    # max() keeps the first of equal matches, like UNISAL's np.argmax.
    rows, cols = max(grids, key=match)
    return rows * BOTTLENECK_STRIDE, cols * BOTTLENECK_STRIDE
