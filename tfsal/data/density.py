"""Fixation maps and fixation densities.

The density of an image without a ground-truth map is its fixation count map blurred
by an isotropic Gaussian and normalised to sum 1. The default sigma is
``DEFAULT_SIGMA_FRACTION`` (3 %) of the image's longer side: about one degree of
visual angle in the MIT1003 and SALICON set-ups (SALICON's own maps use 19 px on
640x480 images, MIT1003 about 30 px on 1024x768 ones). Mass blurred past the border
is discarded before normalising, as in those benchmarks.

A few hundred fixations on a photograph of several megapixels are blurred as a sum
of separable Gaussians (a matrix product of per-fixation row and column kernels),
not by convolving the whole map: at 3 % of a 3888-pixel side the kernel is about
950 pixels wide, and OpenCV's convolution of such a map took about 10 s of CPU per
image, which made scoring NUS's large images the slowest part of an evaluation.
Both paths use the same sampled kernel and agree to float32 rounding.
"""

import cv2
import numpy as np

DEFAULT_SIGMA_FRACTION = 0.03

# The Gaussian kernel is cut at this many sigmas (OpenCV's own default is ~3-4).
_KERNEL_SIGMAS = 4.0


def default_sigma(shape: tuple[int, int]) -> float:
    """Returns the default blur sigma, in pixels, for an image of ``shape``.

    Args:
        shape: the image's (height, width).
    """
    return DEFAULT_SIGMA_FRACTION * float(max(shape))


def fixation_map(fixations: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Returns the binary map with a 1 at every fixated pixel.

    Args:
        fixations: (N, 2) 0-based ``(row, col)`` fixations; rounded to the nearest
            pixel.
        shape: the map's (height, width).

    Returns:
        (H, W) float32 map of zeros and ones.
    """
    counts = fixation_counts(fixations, shape)
    return (counts > 0).astype(np.float32)


def fixation_counts(fixations: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Returns the map counting how many fixations fall on each pixel.

    Args:
        fixations: (N, 2) 0-based ``(row, col)`` fixations; rounded to the nearest
            pixel and required to lie inside the map.
        shape: the map's (height, width).

    Returns:
        (H, W) float32 counts.
    """
    height, width = _check_shape(shape)
    fixations = np.asarray(fixations, dtype=np.float64).reshape(-1, 2)
    if not np.isfinite(fixations).all():
        raise ValueError("fixations must be finite; found NaN or infinite coordinates.")
    pixels = np.rint(fixations).astype(np.int64)
    outside = (
        (pixels[:, 0] < 0) | (pixels[:, 0] >= height) | (pixels[:, 1] < 0) | (pixels[:, 1] >= width)
    )
    if outside.any():
        first = fixations[np.argmax(outside)]
        raise ValueError(
            f"{int(outside.sum())} fixations lie outside the {height}x{width} map "
            f"(first: row={first[0]}, col={first[1]})."
        )
    counts = np.zeros((height, width), dtype=np.float32)
    np.add.at(counts, (pixels[:, 0], pixels[:, 1]), 1.0)
    return counts


def density_from_fixations(
    fixations: np.ndarray,
    shape: tuple[int, int],
    sigma: float | tuple[float, float] | None = None,
) -> np.ndarray:
    """Returns the fixation density: the blurred fixation count map, summing to 1.

    Args:
        fixations: (N, 2) 0-based ``(row, col)`` fixations, N >= 1.
        shape: the density's (height, width).
        sigma: Gaussian sigma in pixels, one value or a (row, col) pair; None uses
            ``default_sigma(shape)`` (3 % of the longer side).

    Returns:
        (H, W) float32 density summing to 1.
    """
    fixations = np.asarray(fixations, dtype=np.float64).reshape(-1, 2)
    if len(fixations) == 0:
        raise ValueError(
            "density_from_fixations needs at least one fixation. Received: 0 fixations"
        )
    counts = fixation_counts(fixations, shape)
    if sigma is None:
        sigma = default_sigma(shape)
    return blur_to_density(counts, sigma)


def blur_to_density(counts: np.ndarray, sigma: float | tuple[float, float]) -> np.ndarray:
    """Blurs a non-negative count map with a Gaussian and normalises it to sum 1.

    Args:
        counts: (H, W) non-negative map with a positive sum.
        sigma: Gaussian sigma in pixels, one value or a (row, col) pair.

    Returns:
        (H, W) float32 density summing to 1.
    """
    sigma_row, sigma_col = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (2,))
    if not (sigma_row > 0 and sigma_col > 0):
        raise ValueError(f"sigma must be > 0. Received: sigma={sigma}")
    counts = np.asarray(counts, dtype=np.float32)
    if counts.sum() <= 0:
        raise ValueError("counts must contain at least one positive value.")
    rows, cols = np.nonzero(counts)
    size_row, size_col = _kernel_size(sigma_row), _kernel_size(sigma_col)
    if len(rows) * (counts.shape[0] + counts.shape[1]) < counts.size * min(size_row, size_col):
        blurred = _sum_of_gaussians(counts, rows, cols, sigma_row, sigma_col)
    else:
        blurred = cv2.GaussianBlur(
            counts,
            ksize=(size_col, size_row),
            sigmaX=float(sigma_col),
            sigmaY=float(sigma_row),
            borderType=cv2.BORDER_CONSTANT,
        )
    blurred = np.maximum(blurred, 0.0)
    total = float(blurred.sum(dtype=np.float64))
    if total <= 0:
        # Every count sat so far out on a tiny map that nothing survived; fall back to
        # the unblurred counts rather than dividing by zero.
        blurred, total = counts, float(counts.sum(dtype=np.float64))
    return (blurred / total).astype(np.float32)


def _sum_of_gaussians(counts, rows, cols, sigma_row, sigma_col) -> np.ndarray:
    """The zero-padded Gaussian blur of a sparse count map, as a matrix product.

    ``blur(counts) = R.T @ diag(weights) @ C`` where row ``i`` of ``R`` (``C``) is the
    1-D kernel centred on non-zero pixel ``i``'s row (column), cut to the map: the
    same sampled kernel ``cv2.GaussianBlur`` uses, so both paths agree.
    """
    height, width = counts.shape
    weights = counts[rows, cols].astype(np.float64)
    along_rows = _kernel_rows(rows, height, sigma_row) * weights[:, None]
    along_cols = _kernel_rows(cols, width, sigma_col)
    return (along_rows.T @ along_cols).astype(np.float32)


def _kernel_rows(centres: np.ndarray, length: int, sigma: float) -> np.ndarray:
    """(N, length): the sampled 1-D Gaussian kernel centred on each of ``centres``."""
    size = _kernel_size(sigma)
    kernel = cv2.getGaussianKernel(size, float(sigma), cv2.CV_64F)[:, 0]
    offsets = np.arange(length)[None, :] - centres[:, None] + size // 2
    inside = (offsets >= 0) & (offsets < size)
    return np.where(inside, kernel[np.clip(offsets, 0, size - 1)], 0.0)


def _kernel_size(sigma: float) -> int:
    return 2 * int(np.ceil(_KERNEL_SIGMAS * sigma)) + 1


def _check_shape(shape: tuple[int, int]) -> tuple[int, int]:
    if len(shape) != 2 or min(int(shape[0]), int(shape[1])) < 1:
        raise ValueError(f"shape must be a positive (height, width). Received: shape={shape}")
    return int(shape[0]), int(shape[1])
