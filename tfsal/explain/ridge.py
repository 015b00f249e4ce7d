"""Closed-form ridge regression from streamed normal equations.

The reconstruction of a deep layer's activations from log-Gabor features is first
fitted in closed form. Rather than holding every pixel of every training image in
memory, ``RidgeAccumulator`` adds up the sufficient statistics (X^T X, X^T Y and the
column sums) batch by batch, so memory is O(K^2 + K C) whatever the data set size, and
accumulators built on different shards or workers can be merged (``merge``) or summed
element-wise once expressed relative to a common origin (``recentred``, ``state``).
The same statistics score any linear map on held-out rows (``score``), so choosing the
ridge penalty on validation images needs no second pass over them.
"""

import dataclasses
from collections.abc import Iterable

import keras
import numpy as np
import scipy.linalg

STATE_KEYS = ("count", "shift_x", "shift_y", "sum_x", "sum_y", "sum_yy", "xtx", "xty")


@dataclasses.dataclass(frozen=True)
class RidgeScore:
    """How well a linear map reproduces the targets of the accumulated rows.

    Attributes:
        r2: 1 - residual sum of squares / total sum of squares, pooled over targets.
        channel_cc: Pearson correlation of prediction and target, per target (NaN for
            a target that is constant over the rows, e.g. a dead ReLU channel).
    """

    r2: float
    channel_cc: np.ndarray

    @property
    def mean_cc(self) -> float:
        """Mean of ``channel_cc`` over the targets that vary."""
        finite = self.channel_cc[np.isfinite(self.channel_cc)]
        return float(finite.mean()) if finite.size else float("nan")


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
        self._sum_yy = np.zeros(self.num_targets)

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
        self._sum_yy += (y * y).sum(axis=0)

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
        for key, value in other._moments_about(self._shift_x, self._shift_y).items():
            setattr(self, key, getattr(self, key) + value)
        self.count += other.count

    def _moments_about(self, shift_x, shift_y) -> dict[str, np.ndarray]:
        """This accumulator's sums re-expressed relative to another origin."""
        dx = self._shift_x - shift_x
        dy = self._shift_y - shift_y
        n = self.count
        return {
            "_xtx": self._xtx
            + np.outer(self._sum_x, dx)
            + np.outer(dx, self._sum_x)
            + n * np.outer(dx, dx),
            "_xty": self._xty
            + np.outer(self._sum_x, dy)
            + np.outer(dx, self._sum_y)
            + n * np.outer(dx, dy),
            "_sum_yy": self._sum_yy + 2 * dy * self._sum_y + n * dy * dy,
            "_sum_x": self._sum_x + n * dx,
            "_sum_y": self._sum_y + n * dy,
        }

    def recentred(self, shift_x, shift_y) -> "RidgeAccumulator":
        """The same rows, accumulated relative to another origin.

        Accumulators that share an origin can be summed element-wise (``state``,
        ``from_state``), e.g. by an all-reduce across workers.
        """
        result = RidgeAccumulator(self.num_features, self.num_targets, self.fit_intercept)
        result._shift_x = np.array(shift_x, dtype=np.float64).reshape(self.num_features)
        result._shift_y = np.array(shift_y, dtype=np.float64).reshape(self.num_targets)
        for key, value in self._moments_about(result._shift_x, result._shift_y).items():
            setattr(result, key, value)
        result.count = self.count
        return result

    def state(self) -> dict[str, np.ndarray]:
        """The accumulated statistics as float64 arrays (keys ``STATE_KEYS``)."""
        return {
            "count": np.array(float(self.count)),
            "shift_x": self._shift_x.copy(),
            "shift_y": self._shift_y.copy(),
            "sum_x": self._sum_x.copy(),
            "sum_y": self._sum_y.copy(),
            "sum_yy": self._sum_yy.copy(),
            "xtx": self._xtx.copy(),
            "xty": self._xty.copy(),
        }

    @classmethod
    def from_state(
        cls, state: dict[str, np.ndarray], fit_intercept: bool = True
    ) -> "RidgeAccumulator":
        """Rebuilds an accumulator from ``state()`` (or a sum of same-origin states)."""
        num_features, num_targets = np.shape(state["xty"])
        result = cls(int(num_features), int(num_targets), fit_intercept)
        result.count = int(round(float(state["count"])))
        for key in STATE_KEYS[1:]:
            setattr(result, f"_{key}", np.array(state[key], dtype=np.float64))
        return result

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

    def score(self, weights, bias) -> RidgeScore:
        """Scores ``rows @ weights + bias`` against the targets of the rows seen so far.

        Computed from the accumulated statistics alone, so a held-out set scores any
        number of candidate solutions after one pass.

        Args:
            weights: (K, C) array.
            bias: (C,) array.
        """
        if self.count == 0:
            raise ValueError("No rows accumulated yet; call update() before score().")
        weights = np.asarray(weights, dtype=np.float64)
        n = self.count
        mean_x = self._sum_x / n
        mean_y = self._sum_y / n
        # Centred second moments; the shift cancels out of every one of them.
        sxx = self._xtx - n * np.outer(mean_x, mean_x)
        sxy = self._xty - n * np.outer(mean_x, mean_y)
        syy = self._sum_yy - n * mean_y * mean_y
        # Mean error per target, in original units.
        offset = (mean_x + self._shift_x) @ weights + np.asarray(bias) - (mean_y + self._shift_y)
        covariance = np.einsum("kc,kc->c", weights, sxy)
        prediction_var = np.einsum("kc,kl,lc->c", weights, sxx, weights)
        residual = syy - 2 * covariance + prediction_var + n * offset * offset
        total = syy.sum()
        r2 = float(1.0 - residual.sum() / total) if total > 0 else float("nan")
        with np.errstate(divide="ignore", invalid="ignore"):
            channel_cc = covariance / np.sqrt(prediction_var * syy)
        channel_cc = np.where(
            (syy > 1e-12 * max(total, 1e-300)) & (prediction_var > 0), channel_cc, np.nan
        )
        return RidgeScore(r2, channel_cc)


def fit_ridge(reconstruction, batches: Iterable, l2: float = 1.0) -> RidgeAccumulator:
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
            keras.ops.convert_to_numpy(reconstruction.kernel_inputs(features)),
            keras.ops.convert_to_numpy(targets),
        )
    if accumulator is None:
        raise ValueError("fit_ridge received no batches.")
    reconstruction.set_ridge_solution(accumulator, l2)
    return accumulator
