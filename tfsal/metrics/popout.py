"""Odd-one-out (pop-out) metrics for search arrays with target and distractor masks.

After Kotseruba, Wloka, Rasouli & Tsotsos, "Do Saliency Models Detect Odd-One-Out
Targets? New Datasets and Evaluations" (BMVC 2019), following ``ykotseruba/P3O3_metrics``:
``gsi`` (global saliency index, Soltani & Koch 2010), ``msr_target`` and
``msr_background`` (maximum saliency ratios), and ``fixations_to_find`` (winner-take-all
search with inhibition of return) with its hit region ``target_region``. The stimuli
and their masks come from ``tfsal.data.popout``, which re-exports these functions.
"""

import cv2
import numpy as np
import scipy.ndimage
from numpy.typing import ArrayLike


def _popout_inputs(
    saliency: ArrayLike,
    target_mask: ArrayLike,
    distractor_mask: ArrayLike,
    dilation: int,
    metric: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Returns the saliency map as float64 and the (dilated) masks as bool, checked."""
    saliency = np.asarray(saliency, np.float64)
    if saliency.ndim != 2 or not np.isfinite(saliency).all():
        raise ValueError(
            f"{metric}: saliency must be a finite (H, W) map. Received: {saliency.shape}"
        )
    if saliency.min() < 0:
        # Ratios and the normalised difference are meaningless across zero (a log-density
        # would score -1 silently); P3O3 scores 8-bit maps, which are never negative.
        raise ValueError(
            f"{metric}: saliency must be non-negative (minimum {saliency.min():.4g}); "
            "exponentiate a log-density, or shift or min-max normalise the map first."
        )
    masks = []
    for name, mask in (("target_mask", target_mask), ("distractor_mask", distractor_mask)):
        mask = np.asarray(mask) > 0
        if mask.shape != saliency.shape:
            raise ValueError(
                f"{metric}: {name} must have the saliency map's shape {saliency.shape}. "
                f"Received: {mask.shape}"
            )
        if not mask.any():
            raise ValueError(f"{metric}: {name} is empty.")
        if dilation > 0:
            rows, cols = np.ogrid[-dilation : dilation + 1, -dilation : dilation + 1]
            disk = rows**2 + cols**2 <= dilation**2
            mask = scipy.ndimage.binary_dilation(mask, structure=disk)
        masks.append(mask)
    return saliency, masks[0], masks[1]


def gsi(saliency: ArrayLike, target_mask: ArrayLike, distractor_mask: ArrayLike) -> float:
    """Global saliency index (Soltani & Koch 2010): (R_t - R_d) / (R_t + R_d).

    R_t and R_d are the mean saliency inside the target and the distractor masks.

    Args:
        saliency: (H, W) non-negative saliency map.
        target_mask: (H, W) target mask.
        distractor_mask: (H, W) distractor mask.

    Returns:
        A value in [-1, 1]; > 0 when the target is more salient; -1 when
        R_t + R_d <= 0.

    Raises:
        ValueError: if the map is not a finite, non-negative (H, W) map or a mask
            is empty or of another shape.
    """
    saliency, target, distractors = _popout_inputs(saliency, target_mask, distractor_mask, 0, "gsi")
    inside_target = saliency[target].mean()
    inside_distractors = saliency[distractors].mean()
    total = inside_target + inside_distractors
    return float((inside_target - inside_distractors) / total) if total > 0 else -1.0


def msr_target(
    saliency: ArrayLike, target_mask: ArrayLike, distractor_mask: ArrayLike, *, dilation: int = 0
) -> float:
    """MSR_targ: max saliency on the target / max saliency on the distractors.

    Args:
        saliency: (H, W) non-negative saliency map.
        target_mask: (H, W) target mask.
        distractor_mask: (H, W) distractor mask.
        dilation: radius of a disk dilating both masks (saliency bleed).

    Returns:
        The ratio; > 1 is good; -1 when the distractor maximum is 0.

    Raises:
        ValueError: as ``gsi``.
    """
    saliency, target, distractors = _popout_inputs(
        saliency, target_mask, distractor_mask, dilation, "msr_target"
    )
    top_target = np.max(saliency * target)
    top_distractor = np.max(saliency * distractors)
    return float(top_target / top_distractor) if top_distractor > 0 else -1.0


def msr_background(
    saliency: ArrayLike, target_mask: ArrayLike, distractor_mask: ArrayLike, *, dilation: int = 0
) -> float:
    """MSR_bg: max saliency on the background / max saliency on the target.

    The background is everything outside the (dilated) target and distractor masks.

    Args:
        saliency: (H, W) non-negative saliency map.
        target_mask: (H, W) target mask.
        distractor_mask: (H, W) distractor mask.
        dilation: radius of a disk dilating both masks (saliency bleed).

    Returns:
        The ratio; < 1 is good; -1 when the target maximum is 0.

    Raises:
        ValueError: as ``gsi``.
    """
    saliency, target, distractors = _popout_inputs(
        saliency, target_mask, distractor_mask, dilation, "msr_background"
    )
    top_target = np.max(saliency * target)
    top_background = np.max(saliency * ~(target | distractors))
    return float(top_background / top_target) if top_target > 0 else -1.0


def border_ratio(saliency: ArrayLike, *, width: int | None = None) -> float:
    """Mean saliency on the map's outer band over the map's mean: a frame artefact.

    A model that draws a bright frame along the image border (zero padding read as an
    edge) scores above 1; a map no brighter on its border than on average scores 1 or
    less.

    Args:
        saliency: (H, W) non-negative saliency map.
        width: band width in pixels; ``None`` for 1/32 of the shorter side (4 px at
            128 px), at least 1.

    Returns:
        The ratio; <= 1 is good; -1 when the map is 0 everywhere.

    Raises:
        ValueError: on a map that is not 2-D or too small for the band.
    """
    saliency = np.asarray(saliency, dtype=np.float64)
    if saliency.ndim != 2:
        raise ValueError(f"border_ratio needs an (H, W) map. Received: shape {saliency.shape}.")
    if width is None:
        width = max(1, round(min(saliency.shape) / 32))
    if width < 1 or 2 * width >= min(saliency.shape):
        raise ValueError(
            f"border_ratio's band must be at least 1 px and leave an inner part of the "
            f"{saliency.shape} map. Received: width={width}."
        )
    band = np.ones(saliency.shape, dtype=bool)
    band[width:-width, width:-width] = False
    mean = saliency.mean()
    return float(saliency[band].mean() / mean) if mean > 0 else -1.0


def target_region(
    shape: tuple[int, int], target_centre: tuple[float, float], target_size: float
) -> np.ndarray:
    """Returns the hit region of ``fixations_to_find``: a disk of radius int(size / 2).

    Args:
        shape: the map's (height, width).
        target_centre: the target's (row, col) centre in pixels.
        target_size: the target's diameter in pixels.

    Returns:
        (H, W) bool mask.
    """
    region = np.zeros(shape, np.uint8)
    centre = (round(target_centre[1]), round(target_centre[0]))
    cv2.circle(region, centre, int(target_size / 2), 1, thickness=-1)
    return region.astype(bool)


def fixations_to_find(
    saliency: ArrayLike,
    target_region_mask: ArrayLike,
    inhibition_size: float | tuple[float, float],
    *,
    max_fixations: int = 100,
    gaussian: bool = False,
    jitter: bool = False,
    seed: int = 0,
) -> tuple[int, bool]:
    """Winner-take-all search: fixations needed until one lands on the target.

    P3O3's ``numfix2find``: the map is divided by 255 (P3O3 reads 8-bit maps; the
    scale only matters with ``jitter``, which adds U(0, 1e-5) to break ties); the next
    fixation is the argmax; if it misses the target, inhibition of return zeroes the
    rectangle of ``inhibition_size`` (rows ``[int(r - h/2), int(r + h/2))``, columns
    likewise, clipped), or with ``gaussian`` scales it by the normalised distance to
    the fixation. P3O3's ``max_tries=99`` is ``max_fixations=100``.

    Args:
        saliency: (H, W) saliency map (0..255 as in P3O3).
        target_region_mask: (H, W) hit region, e.g. ``target_region(...)``.
        inhibition_size: (height, width) of the inhibited box, or one number (the
            distractor size).
        max_fixations: give up after this many fixations.
        gaussian: graded inhibition instead of zeroing.
        jitter: add U(0, 1e-5) after dividing by 255.
        seed: seed of the jitter.

    Returns:
        (fixations made, whether the target was found).
    """
    search = np.asarray(saliency, np.float64) / 255.0
    region = np.asarray(target_region_mask) > 0
    if search.ndim != 2 or region.shape != search.shape or not np.isfinite(search).all():
        raise ValueError(
            "fixations_to_find: saliency must be a finite (H, W) map and "
            f"target_region_mask the same shape. Received: {search.shape}, {region.shape}"
        )
    if max_fixations < 1:
        raise ValueError(f"max_fixations must be >= 1. Received: max_fixations={max_fixations}")
    box_height, box_width = np.broadcast_to(np.asarray(inhibition_size, np.float64), (2,))
    if jitter:
        search = search + np.random.default_rng(seed).uniform(0.0, 1e-5, search.shape)
    height, width = search.shape
    for tries in range(1, max_fixations + 1):
        row, col = np.unravel_index(np.argmax(search), search.shape)
        if region[row, col]:
            return tries, True
        top, bottom = max(0, int(row - box_height / 2)), min(height, int(row + box_height / 2))
        left, right = max(0, int(col - box_width / 2)), min(width, int(col + box_width / 2))
        if gaussian:
            rows, cols = np.meshgrid(np.arange(top, bottom), np.arange(left, right), indexing="ij")
            distance = np.hypot(rows - row, cols - col)
            search[top:bottom, left:right] *= distance / max(distance.max(), 1.0)
        else:
            search[top:bottom, left:right] = 0.0
    return max_fixations, False
