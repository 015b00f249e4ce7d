"""The linear readout of one tap: its reconstruction, saliency logits and their split.

In the ``linear`` readout of an explainable model (DESIGN.md §3) a tap contributes
``blur(Â_t · v_t)`` to the saliency logits, where ``Â_t = scale(F_t) W_t + b_t`` is
the ``LinearReconstruction`` of the tap from the log-Gabor features ``F_t`` and
``v_t`` a learned vector over the tap's channels. Everything after the feature
scaling is linear, so the logits split exactly into one term per feature,
``blur(scale(F_t)_k (W_t v_t)_k)``, plus the constant ``b_t · v_t``: those terms are
the per-pixel contributions the interpretation report reads.

With ``context_sigmas`` the tap adds ``blur_j(Â_t · u_tj)`` for every wider blur
``j``, each with its own vector ``u_tj``: the logits then read how much of a
feature family surrounds a pixel, not only what is at it (on NUS, one width alone
kept about 70% of UNISAL's CC). The sum stays linear in the scaled features, so the
contributions still add up exactly.
"""

import math

import keras
import tensorflow as tf

from tfsal.layers.reconstruction import LinearReconstruction


def gaussian_kernel_1d(sigma: float) -> list[float]:
    """A normalised Gaussian of standard deviation ``sigma``, truncated at 3 sigma."""
    radius = max(1, math.ceil(3 * sigma))
    weights = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-radius, radius + 1)]
    total = sum(weights)
    return [w / total for w in weights]


def normalised_blur(maps, sigma: float):
    """Gaussian blur of every channel that keeps constant maps constant.

    A normalised convolution (blur of the zero-padded map divided by the blur of
    ones) works for maps of any size, even smaller than the kernel, and stays
    linear in the maps, so blurred contributions still add up to blurred logits.
    """
    if sigma <= 0:
        return maps
    kernel = tf.constant(gaussian_kernel_1d(sigma), maps.dtype)
    size = kernel.shape[0]
    channels = maps.shape[-1]

    def blur(x, count):
        rows = tf.tile(tf.reshape(kernel, (size, 1, 1, 1)), (1, 1, count, 1))
        columns = tf.tile(tf.reshape(kernel, (1, size, 1, 1)), (1, 1, count, 1))
        x = tf.nn.depthwise_conv2d(x, rows, (1, 1, 1, 1), "SAME")
        return tf.nn.depthwise_conv2d(x, columns, (1, 1, 1, 1), "SAME")

    weight = blur(tf.ones_like(maps[..., :1]), 1)
    return blur(maps, channels) / weight


@keras.saving.register_keras_serializable(package="tfsal")
class TapReadout(keras.layers.Layer):
    """Reconstructs one tap from log-Gabor features and reads saliency logits from it.

    Holds the tap's ``LinearReconstruction`` (attribute ``reconstruction``) and the
    readout vector ``v`` (weight ``readout``, one entry per tap channel).

    Example:
    ```python
    readout = TapReadout(units=96, feature_grid=(3, 4, 6), blur_sigma=1.0)
    reconstruction, logits, contributions = readout(features)  # (B, h, w, 72) in
    # (B, h, w, 96), (B, h, w, 1), (B, h, w, 73); contributions sum to logits
    ```

    Args:
        units: C, the tap's channels.
        feature_grid: (colours, scales, orientations) of the log-Gabor features.
        feature_scaling: see ``LinearReconstruction``.
        feature_copies: see ``LinearReconstruction`` (2 with ``ImageNormalisation``).
        blur_sigma: standard deviation, in tap pixels, of the Gaussian blur of the
            logits (0 for none), >= 0.
        context_sigmas: standard deviations, in tap pixels, of further blurred
            copies of the readout, each > 0 and with its own vector over the tap's
            channels (weight ``context_readout``, (C, len(context_sigmas))); empty
            for none.
        kernel_size: odd k of the reconstruction's k×k neighbourhood (see
            ``LinearReconstruction``); the contributions stay one term per feature.
        **kwargs: base layer arguments (name, dtype, trainable).

    Call returns:
        ``(reconstruction, logits, contributions)``: (B, h, w, C), (B, h, w, 1) and
        (B, h, w, K + 1): one channel per feature, then the constant ``b · v``;
        the channels of ``contributions`` sum to ``logits``.
    """

    def __init__(
        self,
        units: int,
        feature_grid: tuple[int, int, int] | None = None,
        feature_scaling: bool = True,
        blur_sigma: float = 1.0,
        context_sigmas: tuple[float, ...] = (),
        kernel_size: int = 1,
        feature_copies: int = 1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not blur_sigma >= 0:
            raise ValueError(f"blur_sigma must be >= 0. Received: blur_sigma={blur_sigma!r}")
        context_sigmas = tuple(float(sigma) for sigma in context_sigmas)
        if any(not sigma > 0 for sigma in context_sigmas):
            raise ValueError(
                f"context_sigmas must all be > 0. Received: context_sigmas={context_sigmas!r}"
            )
        self.context_sigmas = context_sigmas
        self.units = units
        self.feature_grid = None if feature_grid is None else tuple(feature_grid)
        self.feature_scaling = bool(feature_scaling)
        self.blur_sigma = float(blur_sigma)
        self.reconstruction = LinearReconstruction(
            units,
            feature_scaling=feature_scaling,
            feature_grid=self.feature_grid,
            feature_copies=feature_copies,
            kernel_size=kernel_size,
            name="reconstruction",
        )
        self.feature_copies = self.reconstruction.feature_copies
        self.kernel_size = kernel_size

    def build(self, input_shape):
        """Builds the reconstruction and the readout vector (zeros: no signal yet)."""
        self.reconstruction.build(input_shape)
        self.readout = self.add_weight(shape=(self.units,), initializer="zeros", name="readout")
        self.context_readout = None
        if self.context_sigmas:
            self.context_readout = self.add_weight(
                shape=(self.units, len(self.context_sigmas)),
                initializer="zeros",
                name="context_readout",
            )

    def readout_weights(self) -> list:
        """The weights the readout fitting trains (the vectors, not the reconstruction)."""
        return [self.readout] + ([self.context_readout] if self.context_sigmas else [])

    def call(self, inputs):
        """Returns the reconstruction, the logits and the per-feature contributions."""
        reconstruction_layer = self.reconstruction
        scaled = reconstruction_layer.scale_features(inputs)
        reconstruction = reconstruction_layer.linear_map(scaled)
        # The logits read the reconstruction's projections, computed with the kernel
        # folded with the vectors: when only the saliency is asked for, the
        # reconstruction itself is never built (a graph drops unused outputs).
        vectors = self.readout[:, None]
        if self.context_sigmas:
            vectors = keras.ops.concatenate([vectors, self.context_readout], axis=-1)
        projections = reconstruction_layer.project(scaled, vectors)
        logits = normalised_blur(projections[..., :1], self.blur_sigma)
        per_feature = normalised_blur(
            reconstruction_layer.feature_terms(scaled, self.readout), self.blur_sigma
        )
        constant = keras.ops.sum(reconstruction_layer.bias * self.readout)
        for j, sigma in enumerate(self.context_sigmas):
            vector = self.context_readout[:, j]
            # The blur keeps constants constant, so b · u_j adds to the constant term.
            logits = logits + normalised_blur(projections[..., j + 1 : j + 2], sigma)
            per_feature = per_feature + normalised_blur(
                reconstruction_layer.feature_terms(scaled, vector), sigma
            )
            constant = constant + keras.ops.sum(reconstruction_layer.bias * vector)
        contributions = keras.ops.concatenate(
            [per_feature, keras.ops.ones_like(logits) * constant], axis=-1
        )
        return reconstruction, logits, contributions

    def compute_output_shape(self, input_shape):
        """Shapes of reconstruction, logits and contributions."""
        leading = tuple(input_shape[:-1])
        return (*leading, self.units), (*leading, 1), (*leading, input_shape[-1] + 1)

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(
            units=self.units,
            feature_grid=self.feature_grid,
            feature_scaling=self.feature_scaling,
            blur_sigma=self.blur_sigma,
            context_sigmas=self.context_sigmas,
            kernel_size=self.kernel_size,
            feature_copies=self.feature_copies,
        )
        return config
