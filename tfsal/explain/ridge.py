"""Closed-form ridge regression from streamed normal equations.

The reconstruction of a deep layer's activations from log-Gabor features is first
fitted in closed form. Rather than holding every pixel of every training image in
memory, ``RidgeAccumulator`` adds up the sufficient statistics (X^T X, X^T Y and the
column sums) batch by batch, so memory is O(K^2 + K C) whatever the data set size, and
accumulators built on different shards or workers can be merged.
"""

import keras
import numpy as np
import scipy.linalg


class RidgeAccumulator:
    """Streams X^T X and X^T Y and solves ridge regression with an unpenalised bias.

    Rows are accumulated in float64 relative to the mean of the first batch, which
    keeps the centred statistics accurate even when features have a large offset.

    Example:
    ```python
    accumulator = RidgeAccumulator(num_features=72, num_targets=96)
    for features, activations in batches:  # (..., 72) and (..., 96)
        accumulator.update(features, activations)
    weights, bias = accumulator.solve(l2=1e-2)  # (72, 96) and (96,)
    ```

    Args:
        num_features: K, the number of input features.
        num_targets: C, the number of targets fitted jointly.
        fit_intercept: whether to fit an unpenalised bias.
    """

    def __init__(self, num_features: int, num_targets: int, fit_intercept: bool = True):
        for name, value in (("num_features", num_features), ("num_targets", num_targets)):
            if not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be an int >= 1. Received: {name}={value!r}")
        self.num_features = int(num_features)
        self.num_targets = int(num_targets)
        self.fit_intercept = fit_intercept
        self.count = 0
        self._shift_x = np.zeros(self.num_features)
        self._shift_y = np.zeros(self.num_targets)
        self._sum_x = np.zeros(self.num_features)
        self._sum_y = np.zeros(self.num_targets)
        self._xtx = np.zeros((self.num_features, self.num_features))
        self._xty = np.zeros((self.num_features, self.num_targets))

    def update(self, features, targets) -> None:
        """Adds a batch of rows.

        Args:
            features: array (..., K); every leading position is one row.
            targets: array (..., C) with the same leading shape.
        """
        x = np.asarray(features, dtype=np.float64)
        y = np.asarray(targets, dtype=np.float64)
        if x.shape[-1:] != (self.num_features,) or y.shape[-1:] != (self.num_targets,):
            raise ValueError(
                f"features must end in {self.num_features} channels and targets in "
                f"{self.num_targets}. Received: features.shape={x.shape}, "
                f"targets.shape={y.shape}"
            )
        if x.shape[:-1] != y.shape[:-1]:
            raise ValueError(
                "features and targets must have the same leading shape (one row per "
                f"position). Received: features.shape={x.shape}, targets.shape={y.shape}"
            )
        x = x.reshape(-1, self.num_features)
        y = y.reshape(-1, self.num_targets)
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ValueError("features and targets must be finite; found NaN or inf.")
        if len(x) == 0:
            return
        if self.count == 0 and self.fit_intercept:
            self._shift_x = x.mean(axis=0)
            self._shift_y = y.mean(axis=0)
        x = x - self._shift_x
        y = y - self._shift_y
        self.count += len(x)
        self._sum_x += x.sum(axis=0)
        self._sum_y += y.sum(axis=0)
        self._xtx += x.T @ x
        self._xty += x.T @ y

    def merge(self, other: "RidgeAccumulator") -> None:
        """Adds the rows accumulated by ``other`` (for example on another shard)."""
        if (other.num_features, other.num_targets, other.fit_intercept) != (
            self.num_features,
            self.num_targets,
            self.fit_intercept,
        ):
            raise ValueError(
                "Can only merge accumulators of the same shape and fit_intercept. Received: "
                f"({other.num_features}, {other.num_targets}, {other.fit_intercept}) into "
                f"({self.num_features}, {self.num_targets}, {self.fit_intercept})"
            )
        if other.count == 0:
            return
        if self.count == 0:
            self._shift_x, self._shift_y = other._shift_x.copy(), other._shift_y.copy()
        # Re-express the other's statistics relative to this accumulator's shift.
        dx = other._shift_x - self._shift_x
        dy = other._shift_y - self._shift_y
        n = other.count
        self._xtx += (
            other._xtx
            + np.outer(other._sum_x, dx)
            + np.outer(dx, other._sum_x)
            + n * np.outer(dx, dx)
        )
        self._xty += (
            other._xty
            + np.outer(other._sum_x, dy)
            + np.outer(dx, other._sum_y)
            + n * np.outer(dx, dy)
        )
        self._sum_x += other._sum_x + n * dx
        self._sum_y += other._sum_y + n * dy
        self.count += n

    def solve(self, l2: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Solves ``min ||X W + b - Y||^2 + l2 ||W||^2`` for the rows seen so far.

        With ``l2 == 0`` and rank-deficient features the minimum-norm solution is
        returned.

        Args:
            l2: ridge penalty on the weights (not on the bias), >= 0.

        Returns:
            ``(weights, bias)``: float64 arrays (K, C) and (C,).
        """
        if not l2 >= 0:
            raise ValueError(f"l2 must be >= 0. Received: l2={l2!r}")
        if self.count == 0:
            raise ValueError("No rows accumulated yet; call update() before solve().")
        mean_x = self._sum_x / self.count
        mean_y = self._sum_y / self.count
        if self.fit_intercept:
            gram = self._xtx - self.count * np.outer(mean_x, mean_x)
            cross = self._xty - self.count * np.outer(mean_x, mean_y)
        else:
            gram, cross = self._xtx, self._xty
        regularised = gram + l2 * np.eye(self.num_features)
        try:
            weights = scipy.linalg.solve(regularised, cross, assume_a="pos")
        except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
            weights = np.linalg.lstsq(regularised, cross, rcond=None)[0]
        if not self.fit_intercept:
            return weights, np.zeros(self.num_targets)
        bias = (mean_y + self._shift_y) - (mean_x + self._shift_x) @ weights
        return weights, bias


def fit_ridge(reconstruction, batches, l2: float = 1.0) -> RidgeAccumulator:
    """Sets a ``LinearReconstruction``'s kernel and bias to the ridge solution.

    The normal equations are accumulated batch by batch on the scaled features, so
    memory does not grow with the data set. Call ``reconstruction.adapt`` first when
    ``feature_scaling`` is on. The caller that streams the batches shows progress.

    Args:
        reconstruction: a ``tfsal.layers.LinearReconstruction``.
        batches: iterable of ``(features, targets)``, (..., K) and (..., units).
        l2: ridge penalty on the kernel, >= 0.

    Returns:
        The filled accumulator (merge several and call ``set_ridge_solution`` to fit
        across workers).
    """
    accumulator = None
    for features, targets in batches:
        if not reconstruction.built:
            reconstruction.build(tuple(features.shape))
        if accumulator is None:
            accumulator = RidgeAccumulator(reconstruction.kernel.shape[0], reconstruction.units)
        accumulator.update(
            keras.ops.convert_to_numpy(reconstruction.scale_features(features)),
            keras.ops.convert_to_numpy(targets),
        )
    if accumulator is None:
        raise ValueError("fit_ridge received no batches.")
    reconstruction.set_ridge_solution(accumulator, l2)
    return accumulator
