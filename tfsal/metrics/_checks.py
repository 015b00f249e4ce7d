"""Input checks and batching shared by the functional metrics.

``_batched`` lets a per-image metric take (B, H, W) batches; the other helpers turn
the arguments into float64 maps with messages that name the metric and the argument.
The conventions they enforce are documented in ``tfsal.metrics.functional``.
"""

import functools

import numpy as np

REDUCTIONS = ("mean", "none")

# Maps whose largest magnitude lies outside [2**-256, 2**256] are rescaled: squares
# and sums over a billion pixels then stay far inside float64's range.
_SAFE_LOW, _SAFE_HIGH = 2.0**-256, 2.0**256


def _batched(metric):
    """Lets ``metric(saliency, *maps, **options)`` take (B, H, W) batches too."""

    @functools.wraps(metric)
    def wrapper(saliency, *maps, reduction="mean", **options):
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}. Received: {reduction!r}")
        saliency = np.asarray(saliency)
        if saliency.ndim != 3:
            return metric(saliency, *maps, **options)
        if len(saliency) == 0:
            raise ValueError(
                f"{metric.__name__}: the batch is empty (saliency.shape={saliency.shape}); "
                "a mean over no image is undefined. Score at least one image."
            )
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
    return _in_safe_range(array)


def _in_safe_range(array: np.ndarray) -> np.ndarray:
    """Scales ``array`` by a power of two if squares or sums of it could overflow.

    Every metric is invariant to scaling a map, and a power-of-two scale is exact,
    so scores do not change; without it, values near 1e200 overflow to inf in the
    variance and values near 1e-200 underflow to 0.
    """
    magnitude = max(abs(float(array.max())), abs(float(array.min())))
    if magnitude == 0 or _SAFE_LOW <= magnitude <= _SAFE_HIGH:
        return array
    return np.ldexp(array, -np.frexp(magnitude)[1])


def _density(array, name: str, saliency: np.ndarray, metric: str) -> np.ndarray:
    """A ground-truth density: the saliency map's shape, non-negative, not all zero."""
    array = _same_shape(array, name, saliency, metric)
    if array.min() < 0 or array.max() <= 0:
        raise ValueError(
            f"{metric}: {name} must be non-negative and not all zero (a fixation density). "
            f"Received: min={array.min():.3g}, max={array.max():.3g}"
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
