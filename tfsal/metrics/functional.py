"""Fixation-prediction metrics as pure numpy functions.

Definitions follow the MIT saliency benchmark (Bylinskii et al., ``cvzoya/saliency``
``code_forMetrics``) by default; where pysaliency (Kümmerer et al.) differs, a named
argument selects its convention. Conventions shared by every function:

- ``saliency`` is an (H, W) map, or a (B, H, W) batch. It must already have the
  shape of the fixation map (the image size): resize predictions before scoring, as
  the MIT benchmark does.
- ``fixations`` is an (H, W) fixation map: a pixel is fixated when its value is
  non-zero. Values above 1 count repeated fixations on that pixel; MIT collapses
  them (a binary map), ``count_duplicates=True`` weights each pixel by its count as
  pysaliency does.
- ``density`` is a continuous (H, W) fixation density (blurred fixation map). It
  must be non-negative and not all zero: ``cc``, ``kld``, ``sim`` and ``emd`` raise
  a ``ValueError`` otherwise, as no fixation distribution looks like that. (To
  compare with a signed map, shift it to a minimum of 0 first.)
- Min-max normalising a constant map would divide by zero (NaN in MATLAB); here a
  constant map is normalised to all zeros, so it scores AUC 0.5, NSS 0 and CC 0.
- Maps are scaled by a power of two when their magnitude is beyond 2**256 or below
  2**-256 (every metric is scale invariant), so huge or tiny finite values do not
  overflow or underflow. NaN or infinite values, and empty batches, raise.
- Batches: with (B, H, W) inputs every function scores each image and returns the
  mean over images, or the (B,) per-image values with ``reduction="none"``. Maps
  without a batch axis (such as a shared baseline) apply to every image.

The ROC-area metrics (``auc_judd``, ``auc_borji``, ``auc_shuffled``) live in
``tfsal.metrics.roc`` and are re-exported here; the input checks and batching shared
by every metric live in ``tfsal.metrics._checks``.
"""

import cv2
import numpy as np
from numpy.typing import ArrayLike

from tfsal.metrics._checks import (
    REDUCTIONS,
    _as_map,
    _batched,
    _density,
    _fixation_weights,
    _same_shape,
)
from tfsal.metrics.roc import auc_borji, auc_judd, auc_shuffled

__all__ = [
    "EPS",
    "REDUCTIONS",
    "auc_borji",
    "auc_judd",
    "auc_shuffled",
    "cc",
    "emd",
    "information_gain",
    "kld",
    "nss",
    "sim",
]

# MATLAB's eps, the regulariser of the MIT benchmark's KLdiv and InfoGain.
EPS = float(np.finfo(np.float64).eps)


# The helpers below avoid full-size temporary arrays: on a 480x640 map each one costs
# about as much as a whole metric (allocation and page faults), see BENCHMARKS.md.


def _mean_and_variance(values: np.ndarray) -> tuple[float, float]:
    """Population mean and variance of a flat array, in one pass when that is exact."""
    mean = values.mean()
    variance = np.dot(values, values) / values.size - mean * mean
    if variance <= 1e-6 * mean * mean:  # cancellation: redo it the careful way
        variance = values.var()
    return float(mean), max(float(variance), 0.0)


def _distribution_coefficients(values: np.ndarray, min_max: bool) -> tuple[float, float]:
    """(scale, offset) such that ``values * scale + offset`` is the normalised map.

    MIT (``min_max``) maps x to (x - min) / sum(x - min), the min-max normalised map
    divided by its sum; pysaliency shifts only negative maps. A map with nothing left
    after the shift (constant under min-max, all zero otherwise) becomes uniform.
    """
    shift = values.min() if min_max else min(values.min(), 0.0)
    total = values.sum() - values.size * shift
    if total <= 1e-9 * abs(values.sum()):  # cancellation: redo it the careful way
        total = (values - shift).sum()
    if total <= 0:
        return 0.0, 1.0 / values.size
    return 1.0 / total, -shift / total


@_batched
def nss(
    saliency: ArrayLike,
    fixations: ArrayLike,
    *,
    ddof: int = 1,
    count_duplicates: bool = False,
) -> float:
    """Normalized scanpath saliency: mean standardised saliency at fixated pixels.

    MIT ``NSS`` standardises with MATLAB's ``std`` (``ddof=1``) and averages over
    fixated pixels; pysaliency uses ``ddof=0`` and every fixation
    (``count_duplicates=True``). The two differ by a factor sqrt((N - 1) / N). A
    constant map scores 0.

    Args:
        saliency: the saliency map.
        fixations: the fixation map.
        ddof: delta degrees of freedom of the standard deviation (MIT 1, pysaliency 0).
        count_duplicates: weight fixated pixels by their count (pysaliency).

    Returns:
        The NSS; 0 is chance, higher is better.
    """
    saliency = _as_map(saliency, "saliency", "nss")
    indices, weights = _fixation_weights(fixations, saliency, "nss", count_duplicates)
    values = saliency.ravel()
    if ddof not in (0, 1):
        raise ValueError(f"nss: ddof must be 0 or 1. Received: ddof={ddof}")
    mean, variance = _mean_and_variance(values)
    spread = np.sqrt(variance * values.size / (values.size - ddof)) if values.size > ddof else 0.0
    standardised = values[indices] - mean
    if spread > 0:
        standardised /= spread
    return float(np.dot(weights, standardised) / weights.sum())


@_batched
def cc(saliency: ArrayLike, density: ArrayLike) -> float:
    """Pearson's linear correlation coefficient between two maps (MIT ``CC``).

    MIT and pysaliency agree. A constant map carries no linear information and
    scores 0 (MATLAB would return NaN).

    Args:
        saliency: the saliency map.
        density: the ground-truth density.

    Returns:
        The correlation, in [-1, 1].

    Raises:
        ValueError: if ``density`` is negative somewhere or all zero.
    """
    first_map = _as_map(saliency, "saliency", "cc")
    first = first_map.ravel()
    second = _density(density, "density", first_map, "cc").ravel()
    first_mean, first_variance = _mean_and_variance(first)
    second_mean, second_variance = _mean_and_variance(second)
    if first_variance <= 0 or second_variance <= 0:
        return 0.0
    covariance = np.dot(first, second) / first.size - first_mean * second_mean
    if first_variance < 1e-6 * first_mean**2 or second_variance < 1e-6 * second_mean**2:
        # Nearly constant maps: the one-pass covariance would lose its precision.
        covariance = np.dot(first - first_mean, second - second_mean) / first.size
    return float(np.clip(covariance / np.sqrt(first_variance * second_variance), -1.0, 1.0))


@_batched
def kld(saliency: ArrayLike, density: ArrayLike, *, eps: float = EPS) -> float:
    """Kullback-Leibler divergence KL(density || saliency), in nats (MIT ``KLdiv``).

    Both maps are divided by their sums, then ``sum(Q * log(eps + Q / (P + eps)))``
    with Q the density, P the saliency and eps = 2.2204e-16 (MATLAB ``eps``); this
    equals pysaliency's ``MIT_KLDiv``. A saliency map with negative values is first
    shifted to a minimum of 0 (as pysaliency does; MIT's result would be undefined).

    Args:
        saliency: the saliency map (P).
        density: the ground-truth density (Q), non-negative.
        eps: the regulariser.

    Returns:
        The divergence; 0 is perfect, lower is better.

    Raises:
        ValueError: if ``density`` is negative somewhere or all zero.
    """
    predicted = _as_map(saliency, "saliency", "kld")
    target = _density(density, "density", predicted, "kld")
    target_total = target.sum()
    scale, offset = _distribution_coefficients(predicted, min_max=False)
    # log(eps + Q / (P + eps)) computed in one buffer.
    buffer = predicted * scale
    buffer += offset + eps
    np.divide(target, buffer, out=buffer)
    buffer *= 1.0 / target_total
    buffer += eps
    np.log(buffer, out=buffer)
    return float(np.dot(target.ravel(), buffer.ravel()) / target_total)


@_batched
def sim(saliency: ArrayLike, density: ArrayLike, *, min_max: bool = True) -> float:
    """Similarity (histogram intersection) of two maps made into distributions.

    MIT ``similarity`` min-max normalises each map before dividing it by its sum;
    pysaliency (``min_max=False``) only divides by the sum (after shifting negative
    maps to a minimum of 0). The two give different values for the same maps.

    Args:
        saliency: the saliency map.
        density: the ground-truth density.
        min_max: min-max normalise first (MIT) or not (pysaliency).

    Returns:
        The similarity, in [0, 1]; 1 for identical distributions.

    Raises:
        ValueError: if ``density`` is negative somewhere or all zero.
    """
    first = _as_map(saliency, "saliency", "sim")
    second = _density(density, "density", first, "sim")
    first_scale, first_offset = _distribution_coefficients(first, min_max)
    second_scale, second_offset = _distribution_coefficients(second, min_max)
    first = first * first_scale
    first += first_offset
    second = second * second_scale
    second += second_offset
    return float(np.minimum(first, second, out=first).sum())


@_batched
def information_gain(
    saliency: ArrayLike,
    fixations: ArrayLike,
    baseline: ArrayLike,
    *,
    min_max: bool = True,
    count_duplicates: bool = False,
) -> float:
    """Information gain over a baseline map, in bits per fixation (MIT ``InfoGain``).

    Both maps are min-max normalised and divided by their sums, then the mean over
    fixated pixels of ``log2(eps + p) - log2(eps + p_baseline)``. For probabilistic
    models pass densities with ``min_max=False`` (divide by sums only) and
    ``count_duplicates=True``: that is pysaliency's ``information_gain`` (Kümmerer et
    al. 2015) up to eps. The MIT benchmark's baseline is a centre prior.

    Args:
        saliency: the saliency map.
        fixations: the fixation map.
        baseline: the baseline map, e.g. a centre bias (uniform: a constant map).
        min_max: min-max normalise both maps first (MIT) or not (pysaliency).
        count_duplicates: weight fixated pixels by their count (pysaliency).

    Returns:
        The gain in bits; 0 means no better than the baseline.
    """
    predicted = _as_map(saliency, "saliency", "information_gain")
    reference = _same_shape(baseline, "baseline", predicted, "information_gain")
    indices, weights = _fixation_weights(fixations, predicted, "information_gain", count_duplicates)
    scale, offset = _distribution_coefficients(predicted, min_max)
    reference_scale, reference_offset = _distribution_coefficients(reference, min_max)
    probabilities = predicted.ravel()[indices] * scale + offset
    reference_probabilities = reference.ravel()[indices] * reference_scale + reference_offset
    gains = np.log2(EPS + probabilities) - np.log2(EPS + reference_probabilities)
    return float(np.dot(weights, gains) / weights.sum())


@_batched
def emd(saliency: ArrayLike, density: ArrayLike, *, downsize: int = 32) -> float:
    """Earth mover's distance between the two maps as distributions (MIT ``EMD``).

    As in MIT: the density is shrunk by ``downsize`` (area interpolation here;
    MATLAB's bicubic ``imresize`` is not reproducible bit for bit), the saliency map
    resized to match, both divided by their sums; ground distance is the Euclidean
    distance between pixel positions (OpenCV's exact EMD). Slow: about 0.15 s for a
    15 x 20 grid.

    Args:
        saliency: the saliency map.
        density: the ground-truth density.
        downsize: shrink factor (MIT: 32; 1 keeps full size).

    Returns:
        The distance in pixels of the shrunk grid; 0 is perfect.
    """
    if downsize < 1:
        raise ValueError(f"emd: downsize must be >= 1. Received: downsize={downsize}")
    predicted = _as_map(saliency, "saliency", "emd")
    target = _density(density, "density", predicted, "emd")
    if downsize > 1:
        height = max(1, round(target.shape[0] / downsize))
        width = max(1, round(target.shape[1] / downsize))
        target = cv2.resize(target, (width, height), interpolation=cv2.INTER_AREA)
        predicted = cv2.resize(predicted, (width, height), interpolation=cv2.INTER_AREA)
    rows, cols = np.indices(target.shape)

    def signature(array):
        scale, offset = _distribution_coefficients(array, min_max=False)
        weights = array.ravel() * scale + offset
        return np.stack([weights, rows.ravel(), cols.ravel()], 1).astype(np.float32)

    distance, _, _ = cv2.EMD(signature(predicted), signature(target), cv2.DIST_L2)
    return float(distance)
