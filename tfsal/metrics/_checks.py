"""Input checks and batching shared by the functional metrics.

``_batched`` lets a per-image metric take (B, H, W) batches; the other helpers turn
the arguments into float64 maps with messages that name the metric and the argument.
The conventions they enforce are documented in ``tfsal.metrics.functional``.
"""

import functools

import numpy as np

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
