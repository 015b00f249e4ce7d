"""Deletion and insertion curves of an attribution map (RISE, Petsiuk et al. 2018).

How faithful is an explanation? Rank the image's pixels by the attribution map
(largest first) and change them a fixed number per step, scoring the model after each
step:

- deletion: ranked pixels are replaced by the ``zero`` substrate (black, as RISE
  does); a faithful map makes the score fall fast, so a *low* area under the curve is
  good;
- insertion: starting from the ``blurred`` image (RISE's Gaussian, 11-pixel kernel,
  sigma 5), ranked pixels get their original values back; a faithful map makes the
  score rise fast, so a *high* area is good.

The score is the model's predicted saliency mass inside the explained region
(``serving.region_score``). Only the image's own pixels are ranked and changed (a
letterboxed canvas keeps its padding). A curve has ``steps + 1`` points, from no
pixel to every pixel changed; its area is the trapezoid rule over a [0, 1] axis of
the fraction of steps done. RISE uses 224 pixels per step at 224×224 (224 steps);
``pixels_per_step`` is fixed for a curve, so the last step may change fewer. Step
images are scored in batches, one model call per ``batch_size`` steps.
"""

from collections.abc import Callable

import cv2
import numpy as np

# RISE's blur for the insertion substrate.
BLUR_KERNEL, BLUR_SIGMA = 11, 5.0
DELETION, INSERTION = "deletion", "insertion"


def blurred(image: np.ndarray) -> np.ndarray:
    """RISE's insertion start: the image under an 11×11 Gaussian of sigma 5."""
    return cv2.GaussianBlur(
        np.asarray(image, np.float32), (BLUR_KERNEL, BLUR_KERNEL), BLUR_SIGMA
    ).astype(np.float32)


def pixel_order(attribution: np.ndarray, valid: np.ndarray, seed: int = 0) -> np.ndarray:
    """Flat indices of the valid pixels, largest attribution first.

    Ties (a constant map, flat regions of Grad-CAM) are broken at random, seeded, so
    no method gains from a raster-order sweep.
    """
    attribution = np.asarray(attribution, np.float64).ravel()
    indices = np.flatnonzero(np.asarray(valid, bool).ravel())
    jitter = np.random.default_rng(seed).random(indices.size)
    return indices[np.lexsort((jitter, -attribution[indices]))]


def perturbation_curve(
    score: Callable[[np.ndarray], np.ndarray],
    image: np.ndarray,
    attribution: np.ndarray,
    mode: str,
    valid: np.ndarray | None = None,
    pixels_per_step: int | None = None,
    steps: int | None = None,
    batch_size: int = 16,
    seed: int = 0,
) -> np.ndarray:
    """The deletion or insertion curve of one attribution map.

    Args:
        score: maps a (batch, h, w, 3) float32 batch to (batch,) scores.
        image: (h, w, 3) image, the model's input.
        attribution: (h, w) map ranking the pixels.
        mode: ``"deletion"`` (towards black) or ``"insertion"`` (from blurred).
        valid: (h, w) mask of the pixels that may change (default: all).
        pixels_per_step: pixels changed per step; or give ``steps`` instead.
        steps: number of steps (pixels per step = ceil(valid pixels / steps)).
        batch_size: step images per ``score`` call.
        seed: breaks ties in the ranking.

    Returns:
        (steps + 1,) scores, from the unchanged start to every pixel changed.
    """
    if mode not in (DELETION, INSERTION):
        raise ValueError(f"mode must be {DELETION!r} or {INSERTION!r}. Received: mode={mode!r}")
    if (pixels_per_step is None) == (steps is None):
        raise ValueError("Give exactly one of pixels_per_step and steps.")
    image = np.asarray(image, np.float32)
    height, width = image.shape[:2]
    if np.shape(attribution) != (height, width):
        raise ValueError(
            f"The attribution map must have the image's (h, w) = {(height, width)}. "
            f"Received: {np.shape(attribution)}"
        )
    valid = np.ones((height, width), bool) if valid is None else np.asarray(valid, bool)
    order = pixel_order(attribution, valid, seed)
    if steps is not None:
        pixels_per_step = int(np.ceil(order.size / steps))
    if pixels_per_step < 1:
        raise ValueError(f"pixels_per_step must be >= 1. Received: {pixels_per_step}")
    total_steps = int(np.ceil(order.size / pixels_per_step))
    if mode == DELETION:
        start, finish = image, np.zeros_like(image)
    else:
        start, finish = blurred(image), image
    start_flat, finish_flat = start.reshape(-1, 3), finish.reshape(-1, 3)
    current = start_flat.copy()
    scores, pending = [], [start]
    for step in range(1, total_steps + 1):
        changed = order[(step - 1) * pixels_per_step : step * pixels_per_step]
        current[changed] = finish_flat[changed]
        pending.append(current.reshape(height, width, 3).copy())
        if len(pending) == batch_size:
            scores.extend(np.asarray(score(np.stack(pending)), np.float64).ravel())
            pending = []
    if pending:
        scores.extend(np.asarray(score(np.stack(pending)), np.float64).ravel())
    return np.asarray(scores)


def area_under_curve(curve: np.ndarray) -> float:
    """The trapezoid-rule area of a curve sampled evenly on [0, 1]."""
    curve = np.asarray(curve, np.float64)
    if curve.size < 2:
        raise ValueError(f"A curve needs at least 2 points. Received: {curve.size}")
    return float(np.sum((curve[1:] + curve[:-1]) / 2.0) / (curve.size - 1))


def resample(curve: np.ndarray, points: int) -> np.ndarray:
    """The curve linearly resampled to ``points`` even positions on [0, 1] (for means)."""
    curve = np.asarray(curve, np.float64)
    return np.interp(np.linspace(0, 1, points), np.linspace(0, 1, curve.size), curve)
