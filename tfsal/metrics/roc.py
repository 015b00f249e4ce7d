"""ROC-area metrics: AUC-Judd, AUC-Borji and shuffled AUC, as pure numpy functions.

Same conventions as ``tfsal.metrics.functional``, which re-exports them: MIT
saliency benchmark definitions (``AUC_Judd``, ``AUC_Borji``, ``AUC_shuffled``) by
default, pysaliency's exact ROC by ``exact=True`` and ``count_duplicates=True``;
(B, H, W) batches score each image and return the mean, or the per-image values
with ``reduction="none"``.
"""

import numpy as np
from numpy.typing import ArrayLike

from tfsal.metrics._checks import _as_map, _batched, _fixation_weights

# The sampled ROC evaluates 1 / step_size + 1 thresholds per split; this bounds it.
MIN_STEP_SIZE = 1e-4


def _min_max(array: np.ndarray) -> np.ndarray:
    return _min_max_function(array)(array)


def _min_max_function(array: np.ndarray):
    """Returns the min-max normalisation of ``array``, to apply to a few of its values.

    A constant map becomes all zeros: left at its value (say 1e6), the stepped ROC
    would walk 1e7 thresholds up to it (11 s and 3.9 GB for a 40 x 50 map).
    """
    low, high = array.min(), array.max()
    if high > low:
        return lambda values: (values - low) / (high - low)
    return np.zeros_like


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
    """MIT's AUC_Borji ROC: thresholds 0:step:max per split, trapezoids, mean over splits.

    Rates come from bisecting sorted values, so time and memory grow with
    (splits x thresholds), not (splits x samples x thresholds).
    """
    top = max(positives.max(), negative_samples.max())
    thresholds = np.arange(int(np.floor(top / step_size + 1e-10)), -1, -1) * step_size
    hit_rate = _fraction_reaching(np.sort(positives), thresholds)
    false_rate = np.stack(
        [_fraction_reaching(row, thresholds) for row in np.sort(negative_samples, axis=1)]
    )
    # Thresholds above a split's maximum give the point (0, 0) again: zero area, so
    # one grid up to the overall maximum serves every split.
    start, end = np.zeros((len(false_rate), 1)), np.ones((len(false_rate), 1))
    tp = np.hstack([start, np.broadcast_to(hit_rate, false_rate.shape), end])
    fp = np.hstack([start, false_rate, end])
    return float(np.trapezoid(tp, fp, axis=1).mean())


def _fraction_reaching(sorted_values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """The fraction of ``sorted_values`` >= each threshold."""
    below = np.searchsorted(sorted_values, thresholds, side="left")
    return (sorted_values.size - below) / sorted_values.size


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
    saliency = _as_map(saliency, "saliency", "auc_judd")
    indices, weights = _fixation_weights(fixations, saliency, "auc_judd", count_duplicates)
    values = saliency.ravel()
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
        count_duplicates: weight fixated pixels by their count (pysaliency);
            needs ``exact=True``.

    Returns:
        The area under the curve, in [0, 1].

    Raises:
        ValueError: for bad arguments, maps or fixations, and for
            ``count_duplicates=True`` without ``exact=True``.
    """
    _check_splits(num_splits, step_size, exact, count_duplicates, "auc_borji")
    saliency = _as_map(saliency, "saliency", "auc_borji")
    indices, weights = _fixation_weights(fixations, saliency, "auc_borji", count_duplicates)
    values = saliency.ravel()
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
        count_duplicates: weight fixated pixels by their count (pysaliency);
            needs ``exact=True``.

    Returns:
        The area under the curve, in [0, 1].

    Raises:
        ValueError: for bad arguments, maps or fixations, and for
            ``count_duplicates=True`` without ``exact=True``.
    """
    _check_splits(num_splits, step_size, exact, count_duplicates, "auc_shuffled")
    saliency = _as_map(saliency, "saliency", "auc_shuffled")
    indices, weights = _fixation_weights(fixations, saliency, "auc_shuffled", count_duplicates)
    values = saliency.ravel()
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


def _check_splits(
    num_splits: int, step_size: float, exact: bool, count_duplicates: bool, metric: str
) -> None:
    """Validates the sampling arguments of AUC-Borji and sAUC."""
    if not isinstance(num_splits, int | np.integer) or num_splits < 1:
        raise ValueError(f"{metric}: num_splits must be >= 1. Received: num_splits={num_splits}")
    if not MIN_STEP_SIZE <= step_size <= 1:
        raise ValueError(
            f"{metric}: step_size must be in [{MIN_STEP_SIZE}, 1] (at most "
            f"{round(1 / MIN_STEP_SIZE) + 1} thresholds). Received: step_size={step_size}"
        )
    if count_duplicates and not exact:
        # MIT's sampled ROC works on the binary fixation map: it has no duplicates to count.
        raise ValueError(
            f"{metric}: count_duplicates=True needs exact=True (pysaliency's exact ROC); "
            "the sampled MIT algorithm scores each fixated pixel once."
        )
