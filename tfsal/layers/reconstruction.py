"""Learned linear reconstruction of a deep layer's activations from log-Gabor features.

After Malladi et al., "Deriving Explanation of Deep Visual Saliency Models" (arXiv
2109.03575): each activation map of a tap is rebuilt as a linear combination of the
log-Gabor channels pooled to the tap's resolution. Pooled magnitudes are heavy-tailed
and span orders of magnitude across scales, so (DESIGN.md §3) every feature is divided
by its training median, compressed with log(1 + x) and standardised before the linear
map; the statistics are non-trainable weights, so saved and exported models carry them.

With ``kernel_size`` k > 1 each target pixel reads the scaled features of the k×k
cells around it (a linear convolution): on the NUS UNISAL taps 3×3 raised the
validation R² from 0.33 / 0.09 / 0.09 to 0.44 / 0.15 / 0.13 (BENCHMARKS.md,
"Reconstruction R² per tap"). Every kernel entry still weighs one input feature, so
the reconstruction splits exactly into one term per feature (``feature_terms``).
"""

import math

import keras
import numpy as np
import tensorflow as tf

_MIN_SCALE = 1e-12


@keras.saving.register_keras_serializable(package="tfsal")
class LinearReconstruction(keras.layers.Layer):
    """Maps K feature channels to ``units`` target channels plus a bias, per pixel.

    ``output = scale(features) @ kernel + bias`` with ``scale(x) = (sign(x) log1p(|x| /
    median) - mean) / std`` (median of |x|) when ``feature_scaling`` is on. Fit the statistics with
    ``adapt`` and the kernel in closed form with ``tfsal.explain.fit_ridge`` (or by
    gradient descent). With ``kernel_size`` k > 1 the scaled features are read over
    the k×k cells around every pixel (``kernel_inputs``; the map's edges mirrored),
    and the kernel, (k·k·K, units) in (row, column, feature) order, is a k×k
    convolution.

    Example:
    ```python
    bank = LogGaborBank(output_stride=8)
    reconstruction = LinearReconstruction(units=32, feature_grid=(3, 4, 6))
    reconstruction.adapt(bank(training_images))
    fit_ridge(reconstruction, zip(feature_batches, activation_batches), l2=1.0)
    weights = reconstruction.weights_by_feature()  # (32, colour, scale, orientation)
    ```

    Args:
        units: C, the number of target channels, >= 1.
        feature_scaling: whether to apply the median / log1p / standardisation scaling.
        non_negative: constrain the kernel to be >= 0 (closed-form fits are clipped).
        l1: L1 penalty on the kernel for gradient training, >= 0.
        l2: L2 penalty on the kernel for gradient training, >= 0.
        feature_grid: (colours, scales, orientations) of the first channels, in the
            order ``LogGaborBank`` emits them; needed by ``weights_by_feature``.
        kernel_size: odd k >= 1 of the k×k neighbourhood each pixel reads; k > 1
            needs (B, h, w, K) feature maps.
        feature_copies: how many blocks of the bank's channels the input holds, >= 1:
            2 for the raw magnitudes followed by their per-image normalisation
            (``tfsal.explain.ImageNormalisation``), each block laid out as
            ``feature_grid`` then any residual channels.
        **kwargs: base layer arguments (name, dtype, trainable).
    """

    def __init__(
        self,
        units: int,
        feature_scaling: bool = True,
        non_negative: bool = False,
        l1: float = 0.0,
        l2: float = 0.0,
        feature_grid: tuple[int, int, int] | None = None,
        kernel_size: int = 1,
        feature_copies: int = 1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(units, int) or units < 1:
            raise ValueError(f"units must be an int >= 1. Received: units={units!r}")
        if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"kernel_size must be an odd int >= 1. Received: kernel_size={kernel_size!r}"
            )
        for name, value in (("l1", l1), ("l2", l2)):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0. Received: {name}={value!r}")
        if feature_grid is not None and (
            len(feature_grid) != 3 or any(not isinstance(n, int) or n < 1 for n in feature_grid)
        ):
            raise ValueError(
                "feature_grid must be three ints >= 1 (colours, scales, orientations). "
                f"Received: feature_grid={feature_grid!r}"
            )
        if not isinstance(feature_copies, int) or feature_copies < 1:
            raise ValueError(
                f"feature_copies must be an int >= 1. Received: feature_copies={feature_copies!r}"
            )
        self.units = units
        self.feature_copies = feature_copies
        self.feature_scaling = bool(feature_scaling)
        self.non_negative = bool(non_negative)
        self.l1 = float(l1)
        self.l2 = float(l2)
        self.feature_grid = None if feature_grid is None else tuple(feature_grid)
        self.kernel_size = kernel_size

    def build(self, input_shape):
        """Creates kernel, bias and the non-trainable feature statistics."""
        num_features = input_shape[-1]
        if num_features is None:
            raise ValueError(f"The feature axis must be known. Received: input_shape={input_shape}")
        if self.kernel_size > 1 and len(input_shape) != 4:
            raise ValueError(
                f"kernel_size={self.kernel_size} reads neighbourhoods of (B, h, w, K) feature "
                f"maps. Received: input_shape={input_shape}"
            )
        grid_size = math.prod(self.feature_grid) if self.feature_grid else 1
        if num_features % self.feature_copies or num_features // self.feature_copies < grid_size:
            raise ValueError(
                f"feature_grid={self.feature_grid} needs at least {grid_size} feature channels "
                f"in each of feature_copies={self.feature_copies} equal blocks. "
                f"Received: input_shape={input_shape}"
            )
        regularizer = keras.regularizers.L1L2(self.l1, self.l2) if self.l1 or self.l2 else None
        self.kernel = self.add_weight(
            shape=(self.kernel_size**2 * num_features, self.units),
            initializer="glorot_uniform",
            regularizer=regularizer,
            constraint=keras.constraints.NonNeg() if self.non_negative else None,
            name="kernel",
        )
        self.bias = self.add_weight(shape=(self.units,), initializer="zeros", name="bias")
        self.feature_median = self._statistic("feature_median", num_features, "ones")
        self.feature_mean = self._statistic("feature_mean", num_features, "zeros")
        self.feature_std = self._statistic("feature_std", num_features, "ones")

    def _statistic(self, name, size, initializer):
        return self.add_weight(shape=(size,), initializer=initializer, trainable=False, name=name)

    def scale_features(self, features):
        """Applies the feature scaling (identity when ``feature_scaling`` is off)."""
        features = keras.ops.cast(features, self.compute_dtype)
        if not self.feature_scaling:
            return features
        # Signed so that low-pass residuals of signed colour channels (U, V) survive.
        compressed = keras.ops.sign(features) * keras.ops.log1p(
            keras.ops.abs(features) / self.feature_median
        )
        return (compressed - self.feature_mean) / self.feature_std

    def _mirrored(self, scaled):
        """The scaled maps with a border of k // 2 mirrored cells (the edge cell repeated)."""
        radius = self.kernel_size // 2
        return tf.pad(scaled, [[0, 0], [radius, radius], [radius, radius], [0, 0]], "SYMMETRIC")

    def kernel_inputs(self, inputs):
        """The rows the kernel multiplies: (..., k·k·K) scaled features around each pixel.

        For k = 1 the scaled features themselves; else the K scaled features of every
        cell of the k×k neighbourhood, in (row, column) order, stacked: what the
        normal equations of a ridge fit accumulate.
        """
        scaled = self.scale_features(inputs)
        if self.kernel_size == 1:
            return scaled
        padded = self._mirrored(scaled)
        height, width = tf.shape(scaled)[1], tf.shape(scaled)[2]
        cells = [
            padded[:, row : row + height, column : column + width, :]
            for row in range(self.kernel_size)
            for column in range(self.kernel_size)
        ]
        return keras.ops.concatenate(cells, axis=-1)

    def linear_map(self, scaled):
        """The reconstruction (..., units) of already scaled features (..., K)."""
        if self.kernel_size == 1:
            return keras.ops.matmul(scaled, self.kernel) + self.bias
        kernel = keras.ops.reshape(self.kernel, self._kernel_shape(self.units))
        return tf.nn.conv2d(self._mirrored(scaled), kernel, 1, "VALID") + self.bias

    def project(self, scaled, vectors):
        """``linear_map(scaled) @ vectors`` without building the reconstruction.

        The kernel is folded with the vectors first, so the cost is that of a map to
        n channels instead of ``units``: what a readout of the reconstruction needs
        when the reconstruction itself is not wanted.

        Args:
            scaled: (B, h, w, K) scaled features (or (..., K) for k = 1).
            vectors: (units, n) weights over the reconstructed channels.

        Returns:
            (..., n): the reconstruction's projection on every vector.
        """
        folded = keras.ops.matmul(self.kernel, vectors)  # (k·k·K, n)
        bias = keras.ops.matmul(self.bias[None, :], vectors)[0]
        if self.kernel_size == 1:
            return keras.ops.matmul(scaled, folded) + bias
        kernel = keras.ops.reshape(folded, self._kernel_shape(vectors.shape[-1]))
        return tf.nn.conv2d(self._mirrored(scaled), kernel, 1, "VALID") + bias

    def feature_terms(self, scaled, vector):
        """The projection ``linear_map(scaled) · vector`` split by input feature.

        Args:
            scaled: (B, h, w, K) scaled features.
            vector: (units,) weights over the reconstructed channels.

        Returns:
            (B, h, w, K): term k is feature k's share, summed over the neighbourhood;
            the terms add up to the projection minus the constant ``bias · vector``.
        """
        weights = keras.ops.matmul(self.kernel, vector)  # per (cell, feature)
        if self.kernel_size == 1:
            return scaled * weights
        depthwise = keras.ops.reshape(weights, self._kernel_shape(1))
        return tf.nn.depthwise_conv2d(self._mirrored(scaled), depthwise, (1, 1, 1, 1), "VALID")

    def _kernel_shape(self, outputs):
        size = self.kernel_size
        return (size, size, self.kernel.shape[0] // size**2, outputs)

    def call(self, inputs):
        """Reconstructs (..., units) targets from (..., K) features."""
        return self.linear_map(self.scale_features(inputs))

    def compute_output_shape(self, input_shape):
        """The input shape with the last axis replaced by ``units``."""
        return (*input_shape[:-1], self.units)

    def adapt(self, features) -> None:
        """Sets the scaling statistics from a training sample of features (..., K)."""
        features = np.asarray(keras.ops.convert_to_numpy(features), dtype=np.float64)
        if not self.built:
            self.build(features.shape)
        rows = features.reshape(-1, features.shape[-1])
        if rows.shape[1] != self.feature_median.shape[0]:
            raise ValueError(
                f"adapt expects {self.feature_median.shape[0]} feature channels. "
                f"Received: features.shape={features.shape}"
            )
        magnitude = np.abs(rows)
        median = np.median(magnitude, axis=0)
        # A feature that is mostly zero falls back to its mean magnitude.
        median = np.where(
            median > _MIN_SCALE, median, np.maximum(magnitude.mean(axis=0), _MIN_SCALE)
        )
        compressed = np.sign(rows) * np.log1p(magnitude / median)
        self.feature_median.assign(median)
        self.feature_mean.assign(compressed.mean(axis=0))
        self.feature_std.assign(np.maximum(compressed.std(axis=0), 1e-6))

    def set_ridge_solution(self, accumulator, l2: float = 1.0) -> None:
        """Assigns the ridge solution of a filled accumulator to kernel and bias.

        Args:
            accumulator: a ``tfsal.explain.RidgeAccumulator`` filled with scaled
                features and targets.
            l2: ridge penalty on the kernel, >= 0.
        """
        weights, bias = accumulator.solve(l2)
        if self.non_negative:
            weights = np.maximum(weights, 0.0)
        self.kernel.assign(weights)
        self.bias.assign(bias)

    def weights_by_feature(self) -> np.ndarray:
        """The kernel as a (units, colours, scales, orientations) array.

        With ``feature_copies`` > 1 the array is (units, copies, colours, scales,
        orientations): every copy's weights, since the model reads all of them (copy
        0 the raw magnitudes, copy 1 their per-image normalisation). Entries weigh
        standardised features, so they are comparable across features and copies.
        Channels beyond ``feature_grid`` in each copy (the low-pass residuals) are
        left out.
        With ``kernel_size`` > 1 each entry is the sum over the neighbourhood's cells:
        the feature's weight where it is the same over the neighbourhood.
        """
        if self.feature_grid is None:
            raise ValueError(
                "weights_by_feature needs feature_grid=(colours, scales, orientations). "
                "Received: feature_grid=None"
            )
        if not self.built:
            raise ValueError("The layer has no weights yet; call it or adapt it first.")
        kernel = keras.ops.convert_to_numpy(self.kernel)
        kernel = kernel.reshape(self.kernel_size**2, -1, self.units).sum(axis=0)
        blocks = kernel.reshape(self.feature_copies, -1, self.units)[
            :, : math.prod(self.feature_grid)
        ]
        weights = np.moveaxis(blocks, -1, 0).reshape(
            self.units, self.feature_copies, *self.feature_grid
        )
        return weights[:, 0] if self.feature_copies == 1 else weights

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(
            units=self.units,
            feature_scaling=self.feature_scaling,
            non_negative=self.non_negative,
            l1=self.l1,
            l2=self.l2,
            feature_grid=self.feature_grid,
            kernel_size=self.kernel_size,
            feature_copies=self.feature_copies,
        )
        return config
