"""UNISAL's learned Gaussian prior maps, the one image-path layer with no Keras built-in.

Droste, Jiao and Noble, "Unified Image and Video Saliency Modeling" (ECCV 2020,
arXiv 2003.05477) concatenates 16 learned Gaussian prior maps to the bottleneck.
The other custom layers of UNISAL's image path are shared with the other model
families and live in ``tfsal.layers`` (``EdgePadding2D``, ``BilinearUpsampling2D``,
``SpatialLogSoftmax``).
"""

import itertools

import keras
import numpy as np

# The 16 priors of UNISAL's "manual" initialisation, as (mu_y, mu_x) and
# (logstd_y, logstd_x) in [0, 1] image coordinates: 9 blobs on a 3x3 grid,
# 3 vertical stripes (broad in y), 3 horizontal stripes (broad in x) and one broad
# centred blob.
_MANUAL_MEANS = (
    list(itertools.product([0.25, 0.5, 0.75], repeat=2))
    + [(0.5, 0.25), (0.5, 0.5), (0.5, 0.75)]
    + [(0.25, 0.5), (0.5, 0.5), (0.75, 0.5)]
    + [(0.5, 0.5)]
)
_MANUAL_LOG_STDS = [(-1.5, -1.5)] * 9 + [(0.0, -1.5)] * 3 + [(-1.5, 0.0)] * 3 + [(0.0, 0.0)]
NUM_GAUSSIANS = len(_MANUAL_MEANS)


def manual_gaussian_parameters() -> np.ndarray:
    """Returns UNISAL's manual prior initialisation.

    Returns:
        float32 array of shape (16, 2, 2): prior, axis (y, x), (mu, log std).
    """
    means = np.asarray(_MANUAL_MEANS, dtype="float32")
    log_stds = np.asarray(_MANUAL_LOG_STDS, dtype="float32")
    return np.stack([means, log_stds], axis=-1)


@keras.saving.register_keras_serializable(package="tfsal")
class ManualGaussianInitializer(keras.initializers.Initializer):
    """Initialises a (16, 2, 2) Gaussian parameter tensor with UNISAL's manual priors."""

    def __call__(self, shape, dtype=None):
        """Returns the (16, 2, 2) manual parameters; ``shape`` must match."""
        parameters = manual_gaussian_parameters()
        if tuple(shape) != parameters.shape:
            raise ValueError(
                f"The manual Gaussian initialisation has shape {parameters.shape}. "
                f"Received: shape={tuple(shape)}"
            )
        return keras.ops.convert_to_tensor(parameters, dtype=dtype or "float32")

    def get_config(self):
        """Returns the constructor arguments (none)."""
        return {}


@keras.saving.register_keras_serializable(package="tfsal")
class GaussianPriorMaps(keras.layers.Layer):
    """UNISAL's 16 learned Gaussian prior maps at the resolution of a feature map.

    Prior ``i`` has a mean and a log standard deviation per axis in [0, 1] image
    coordinates, sampled at ``linspace(0, 1, n)`` along each axis:
    ``map_i(y, x) = scale * exp(-((y - mu_y) / std_y)^2 / 2) * exp(-((x - mu_x) / std_x)^2 / 2)``.
    The maps depend on the input's spatial size only, so concatenated to the
    features they act as a learned positional (centre) bias. The weight
    ``gaussians`` has shape (16, 2 [y, x], 2 [mu, log std]), UNISAL's layout, and
    starts from UNISAL's manual initialisation.

    Args:
        scale: factor applied to every map (UNISAL uses 6).
        **kwargs: standard layer arguments (``name``, ``dtype``, ...).

    Input shape:
        ``(batch, height, width, channels)``; only the shape is used.

    Output shape:
        ``(batch, height, width, 16)``.
    """

    def __init__(self, scale=6.0, **kwargs):
        super().__init__(**kwargs)
        if not scale > 0:
            raise ValueError(f"scale must be > 0. Received: scale={scale}")
        self.scale = scale

    def build(self, input_shape):
        """Creates the (16, 2, 2) Gaussian parameters."""
        self.gaussians = self.add_weight(
            name="gaussians",
            shape=(NUM_GAUSSIANS, 2, 2),
            initializer=ManualGaussianInitializer(),
            trainable=True,
        )

    def call(self, inputs):
        """Returns the prior maps at the spatial size of ``inputs``."""
        shape = keras.ops.shape(inputs)
        batch, height, width = shape[0], shape[1], shape[2]
        gaussians = keras.ops.cast(self.gaussians, self.compute_dtype)
        rows = keras.ops.cast(keras.ops.linspace(0.0, 1.0, height), self.compute_dtype)
        cols = keras.ops.cast(keras.ops.linspace(0.0, 1.0, width), self.compute_dtype)
        row_profiles = _gaussian_profiles(rows, gaussians[:, 0])
        col_profiles = _gaussian_profiles(cols, gaussians[:, 1])
        maps = keras.ops.einsum("gh,gw->hwg", row_profiles, col_profiles) * self.scale
        return keras.ops.broadcast_to(maps[None], (batch, height, width, NUM_GAUSSIANS))

    def compute_output_shape(self, input_shape):
        """Returns ``input_shape`` with 16 channels."""
        return (*input_shape[:3], NUM_GAUSSIANS)

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update({"scale": self.scale})
        return config


def _gaussian_profiles(grid, mu_log_std):
    """(num_gaussians, n) Gaussian profiles along one axis for (num_gaussians, 2) params."""
    mu = mu_log_std[:, 0:1]
    std = keras.ops.exp(mu_log_std[:, 1:2])
    return keras.ops.exp(-keras.ops.square((grid[None, :] - mu) / std) / 2.0)
