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
- ``density`` is a continuous (H, W) fixation density (blurred fixation map).
- Min-max normalising a constant map would divide by zero (NaN in MATLAB); here a
  constant map is left constant, so it scores AUC 0.5, NSS 0 and CC 0.
- Batches: with (B, H, W) inputs every function scores each image and returns the
  mean over images, or the (B,) per-image values with ``reduction="none"``. Maps
  without a batch axis (such as a shared baseline) apply to every image.
"""

import functools

import cv2
import numpy as np
from numpy.typing import ArrayLike

# MATLAB's eps, the regulariser of the MIT benchmark's KLdiv and InfoGain.
EPS = float(np.finfo(np.float64).eps)

REDUCTIONS = ("mean", "none")


def _batched(metric):
    """Lets ``metric(saliency, *maps, **options)`` take (B, H, W) batches too."""

    @functools.wraps(metric)
    def wrapper(saliency, *maps, reduction="mean", **options):
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}. Received: {reduction!r}")
        saliency = np.asarray(saliency)
        if saliency.ndim != 3:
            return metric(saliency, *maps, **options)
        maps = [np.asarray(m) for m in maps]
        for position, m in enumerate(maps, start=2):
            if m.ndim == 3 and len(m) != len(saliency):
                raise ValueError(
                    f"{metric.__name__}: argument {position} holds {len(m)} maps for a batch "
                    f"of {len(saliency)} saliency maps; give one map per image."
                )
        values = np.array(
            [
                metric(saliency[i], *[m[i] if m.ndim == 3 else m for m in maps], **options)
                for i in range(len(saliency))
            ]
        )
        return float(values.mean()) if reduction == "mean" else values

    return wrapper


def _as_map(array, name: str, metric: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 2 or array.size == 0:
        raise ValueError(
            f"{metric}: {name} must be a non-empty (H, W) map or a (B, H, W) batch. "
            f"Received: {name}.shape={array.shape}"
        )
    real = np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_
    if not real or np.issubdtype(array.dtype, np.complexfloating):
        raise ValueError(f"{metric}: {name} must be real numbers. Received: dtype={array.dtype}")
    array = array.astype(np.float64, copy=False)
    if not np.isfinite(array).all():
        raise ValueError(
            f"{metric}: {name} contains NaN or infinite values; check the model output "
            "(a log-density must be exponentiated, a division by zero in normalisation "
            "gives NaN)."
        )
    return array


def _same_shape(array, name: str, saliency: np.ndarray, metric: str) -> np.ndarray:
    array = _as_map(array, name, metric)
    if array.shape != saliency.shape:
        raise ValueError(
            f"{metric}: {name} must have the saliency map's shape {saliency.shape}. "
            f"Received: {name}.shape={array.shape}. Resize the saliency map to the image "
            "size before scoring."
        )
    return array


def _fixation_weights(
    fixations, saliency, metric: str, count_duplicates: bool, name: str = "fixations"
) -> tuple[np.ndarray, np.ndarray]:
    """Returns the flat indices of fixated pixels and their weights."""
    counts = np.asarray(fixations)
    if counts.shape != np.shape(saliency):
        _same_shape(counts, name, np.asarray(saliency), metric)  # raises the clear error
    indices = np.flatnonzero(counts)  # NaN and negative entries are non-zero: checked below
    weights = counts.ravel()[indices].astype(np.float64)
    if not (np.isfinite(weights).all() and (weights > 0).all()):
        raise ValueError(f"{metric}: {name} must be a finite, non-negative fixation map.")
    if indices.size == 0:
        raise ValueError(
            f"{metric}: {name} has no fixated pixel; this metric needs at least one "
            "fixation. Skip images without fixations or use a density-based metric."
        )
    return indices, weights if count_duplicates else np.ones(indices.size)


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


def _min_max(array: np.ndarray) -> np.ndarray:
    return _min_max_function(array)(array)


def _min_max_function(array: np.ndarray):
    """Returns the min-max normalisation of ``array``, to apply to a few of its values."""
    low, high = array.min(), array.max()
    if high > low:
        return lambda values: (values - low) / (high - low)
    return lambda values: values


def _weighted_pairwise_auc(positives, positive_weights, negatives, negative_weights) -> float:
    """P(positive > negative) + P(tie)/2: the exact ROC area with all thresholds.

    ``negative_weights`` None weights every negative 1.
    """
    if negative_weights is None:
        sorted_negatives = np.sort(negatives)
        cumulative = np.arange(negatives.size + 1, dtype=np.float64)
    else:
        order = np.argsort(negatives, kind="stable")
        sorted_negatives = negatives[order]
        cumulative = np.concatenate([[0.0], np.cumsum(negative_weights[order])])
    below = cumulative[np.searchsorted(sorted_negatives, positives, side="left")]
    not_above = cumulative[np.searchsorted(sorted_negatives, positives, side="right")]
    credit = below + 0.5 * (not_above - below)
    return float(np.dot(positive_weights, credit) / (positive_weights.sum() * cumulative[-1]))


def _stepped_auc(positives, negative_samples, step_size) -> float:
    """MIT's AUC_Borji ROC: thresholds 0:step:max per split, trapezoids, mean over splits."""
    top = max(positives.max(), negative_samples.max())
    thresholds = np.arange(int(np.floor(top / step_size + 1e-10)), -1, -1) * step_size
    hit_rate = (positives[None, :] >= thresholds[:, None]).mean(axis=1)
    false_rate = (negative_samples[:, None, :] >= thresholds[None, :, None]).mean(axis=2)
    # Thresholds above a split's maximum give the point (0, 0) again: zero area, so
    # one grid up to the overall maximum serves every split.
    start, end = np.zeros((len(false_rate), 1)), np.ones((len(false_rate), 1))
    tp = np.hstack([start, np.broadcast_to(hit_rate, false_rate.shape), end])
    fp = np.hstack([start, false_rate, end])
    return float(np.trapezoid(tp, fp, axis=1).mean())


@_batched
def auc_judd(
    saliency: ArrayLike,
    fixations: ArrayLike,
    *,
    jitter: bool = False,
    seed: int = 0,
    count_duplicates: bool = False,
) -> float:
    """AUC-Judd: ROC area, thresholds at the fixated values, negatives = unfixated pixels.

    MIT ``AUC_Judd``: true-positive rate over fixated pixels, false-positive rate over
    all other pixels. Ties are handled exactly: every distinct fixated value is one
    threshold and pixels tied with it count as above it (pysaliency
    ``AUC_Judd(jitter=False)``; a constant map scores 0.5). MIT instead adds noise of
    1e-7 to break ties at random, which ``jitter=True`` reproduces (seeded, on the
    min-max normalised map).

    Args:
        saliency: the saliency map.
        fixations: the fixation map.
        jitter: add U(0, 1e-7) noise first, as MIT does.
        seed: seed of the jitter.
        count_duplicates: weight fixated pixels by their count (pysaliency).

    Returns:
        The area under the curve, in [0, 1].
    """
    values = _as_map(saliency, "saliency", "auc_judd").ravel()
    indices, weights = _fixation_weights(fixations, saliency, "auc_judd", count_duplicates)
    if indices.size == values.size:
        raise ValueError("auc_judd: every pixel is fixated; there are no negatives.")
    if jitter:
        values = _min_max(values) + np.random.default_rng(seed).random(values.size) * 1e-7
    positives = values[indices]
    thresholds = np.unique(positives)  # ascending
    # One sort, then a bisection per threshold: bisecting every pixel into the
    # thresholds instead costs three times as much.
    ordered = np.sort(values)
    pixels_reaching = ordered.size - np.searchsorted(ordered, thresholds)
    order = np.argsort(positives)
    sorted_positives = positives[order]
    first_reaching = np.searchsorted(sorted_positives, thresholds)
    fixated_reaching = positives.size - first_reaching
    weight_above = np.concatenate([np.cumsum(weights[order][::-1])[::-1], [0.0]])
    tp = weight_above[first_reaching] / weights.sum()
    fp = (pixels_reaching - fixated_reaching) / (values.size - positives.size)
    # Thresholds from the highest down, between the end points (0, 0) and (1, 1).
    return float(np.trapezoid(np.r_[0.0, tp[::-1], 1.0], np.r_[0.0, fp[::-1], 1.0]))


@_batched
def auc_borji(
    saliency: ArrayLike,
    fixations: ArrayLike,
    *,
    num_splits: int = 100,
    step_size: float = 0.1,
    seed: int = 0,
    exact: bool = False,
    count_duplicates: bool = False,
) -> float:
    """AUC-Borji: ROC area against pixels drawn uniformly from the whole map.

    MIT ``AUC_Borji``: min-max normalise; in each of ``num_splits`` splits draw as many
    pixels as there are fixated pixels, uniformly with replacement; thresholds
    ``0:step_size:max``; mean area over splits (seeded, so deterministic).
    ``exact=True`` gives pysaliency's ``AUC(nonfixations="uniform")`` instead: every
    pixel is a negative, every value a threshold, ties count one half.

    Args:
        saliency: the saliency map.
        fixations: the fixation map.
        num_splits: number of random negative sets (MIT: 100).
        step_size: threshold step on the normalised map (MIT: 0.1).
        seed: seed of the negative sampling.
        exact: use the exact ROC against all pixels (pysaliency).
        count_duplicates: weight fixated pixels by their count (pysaliency).

    Returns:
        The area under the curve, in [0, 1].
    """
    _check_splits(num_splits, step_size, "auc_borji")
    values = _as_map(saliency, "saliency", "auc_borji").ravel()
    indices, weights = _fixation_weights(fixations, saliency, "auc_borji", count_duplicates)
    if exact:
        return _weighted_pairwise_auc(values[indices], weights, values, None)
    samples = np.random.default_rng(seed).integers(0, values.size, (num_splits, indices.size))
    normalise = _min_max_function(values)
    return _stepped_auc(normalise(values[indices]), normalise(values[samples]), step_size)


@_batched
def auc_shuffled(
    saliency: ArrayLike,
    fixations: ArrayLike,
    other_fixations: ArrayLike,
    *,
    num_splits: int = 100,
    step_size: float = 0.1,
    seed: int = 0,
    exact: bool = False,
    count_duplicates: bool = False,
) -> float:
    """Shuffled AUC: negatives are fixated locations of other images (centre bias removed).

    MIT ``AUC_shuffled``: ``other_fixations`` is the union of the fixations of other
    images (Borji: 10 random ones) at this image's size; each split draws
    min(#fixated, #other) of its pixels without replacement; thresholds
    ``0:step_size:max``; mean over splits (seeded). ``exact=True`` gives pysaliency's
    ``sAUC``: every other fixation is a negative (weighted by its count in
    ``other_fixations``), every value a threshold, ties count one half.

    Args:
        saliency: the saliency map.
        fixations: the fixation map.
        other_fixations: fixation map of other images, rescaled to this image's size.
        num_splits: number of random negative sets (MIT: 100).
        step_size: threshold step on the normalised map (MIT: 0.1).
        seed: seed of the negative sampling.
        exact: use the exact ROC against all other fixations (pysaliency).
        count_duplicates: weight fixated pixels by their count (pysaliency).

    Returns:
        The area under the curve, in [0, 1].
    """
    _check_splits(num_splits, step_size, "auc_shuffled")
    values = _as_map(saliency, "saliency", "auc_shuffled").ravel()
    indices, weights = _fixation_weights(fixations, saliency, "auc_shuffled", count_duplicates)
    other_indices, other_weights = _fixation_weights(
        other_fixations, saliency, "auc_shuffled", True, name="other_fixations"
    )
    if exact:
        return _weighted_pairwise_auc(
            values[indices], weights, values[other_indices], other_weights
        )
    count = min(indices.size, other_indices.size)
    rng = np.random.default_rng(seed)
    # The `count` smallest of uniform keys: a uniform draw without replacement.
    keys = rng.random((num_splits, other_indices.size))
    picks = np.argpartition(keys, count - 1, axis=1)[:, :count]
    normalise = _min_max_function(values)
    negatives = normalise(values[other_indices[picks]])
    return _stepped_auc(normalise(values[indices]), negatives, step_size)


def _check_splits(num_splits, step_size, metric):
    if not isinstance(num_splits, int | np.integer) or num_splits < 1:
        raise ValueError(f"{metric}: num_splits must be >= 1. Received: num_splits={num_splits}")
    if not 0 < step_size <= 1:
        raise ValueError(f"{metric}: step_size must be in (0, 1]. Received: step_size={step_size}")


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
    values = _as_map(saliency, "saliency", "nss").ravel()
    indices, weights = _fixation_weights(fixations, saliency, "nss", count_duplicates)
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
    """
    first_map = _as_map(saliency, "saliency", "cc")
    first = first_map.ravel()
    second = _same_shape(density, "density", first_map, "cc").ravel()
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
    """
    predicted = _as_map(saliency, "saliency", "kld")
    target = _same_shape(density, "density", predicted, "kld")
    target_total = target.sum()
    if target.min() < 0 or target_total <= 0:
        raise ValueError("kld: density must be non-negative and not all zero.")
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
    """
    first = _as_map(saliency, "saliency", "sim")
    second = _same_shape(density, "density", first, "sim")
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
    target = _same_shape(density, "density", predicted, "emd")
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
