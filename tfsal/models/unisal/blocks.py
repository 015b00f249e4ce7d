"""Functional building blocks of UNISAL's image path (MobileNetV2 encoder, decoder).

Droste, Jiao and Noble, "Unified Image and Video Saliency Modeling" (ECCV 2020,
arXiv 2003.05477). The blocks reproduce PyTorch semantics so that the released
PyTorch weights give the same activations:

- a strided 3x3 convolution pads one pixel on *every* side (``ZeroPadding2D(1)`` and
  a "valid" convolution); Keras' ``padding="same"`` pads (0, 1) on even inputs and
  shifts the sampling grid by one pixel;
- BatchNormalization uses PyTorch's epsilon 1e-5, and Keras momentum
  ``1 - torch_momentum``;
- no convolution before a BatchNormalization has a bias.

Layer names are stable (``block_7_expand``, ``skip_2x_reduction_bn``, ...): the
checkpoint importers in ``tfsal.weights`` address weights by them.
"""

import keras
import numpy as np

BATCH_NORM_EPSILON = 1e-5


def batch_norm(x, name, torch_momentum=0.1):
    """BatchNormalization with PyTorch's epsilon and momentum convention."""
    return keras.layers.BatchNormalization(
        epsilon=BATCH_NORM_EPSILON, momentum=1.0 - torch_momentum, name=name
    )(x)


def relu6(x, name):
    """ReLU clipped at 6, as MobileNetV2."""
    return keras.layers.ReLU(6.0, name=name)(x)


def stem(x, filters, name="stem"):
    """3x3 stride-2 convolution, BatchNorm and ReLU6 (MobileNetV2 ``features.0``)."""
    x = keras.layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    x = keras.layers.Conv2D(filters, 3, strides=2, use_bias=False, name=f"{name}_conv")(x)
    x = batch_norm(x, f"{name}_bn")
    return relu6(x, f"{name}_relu")


def pointwise_conv_bn_relu6(x, filters, name, torch_momentum=0.1):
    """1x1 convolution without bias, BatchNorm and ReLU6."""
    x = keras.layers.Conv2D(filters, 1, use_bias=False, name=name)(x)
    x = batch_norm(x, f"{name}_bn", torch_momentum)
    return relu6(x, f"{name}_relu")


def inverted_residual(x, filters, expand_ratio, name, strides=1, torch_momentum=0.1):
    """MobileNetV2's inverted residual block with PyTorch padding.

    ``expand (1x1) -> BN -> ReLU6 -> depthwise 3x3 -> BN -> ReLU6 -> project (1x1) -> BN``;
    without the expansion when ``expand_ratio`` is 1. The input is added back when
    the block keeps resolution and channels.

    Args:
        x: input tensor (batch, height, width, channels).
        filters: output channels.
        expand_ratio: hidden channels per input channel.
        name: prefix of the block's layer names.
        strides: 1 or 2 (stride of the depthwise convolution).
        torch_momentum: BatchNorm momentum in PyTorch's convention.

    Returns:
        The block's output tensor.
    """
    input_channels = x.shape[-1]
    hidden_channels = int(round(input_channels * expand_ratio))
    inputs = x
    if expand_ratio != 1:
        x = pointwise_conv_bn_relu6(x, hidden_channels, f"{name}_expand", torch_momentum)
    if strides == 1:
        # With stride 1 and an odd kernel, "same" pads symmetrically: PyTorch's padding=1.
        x = keras.layers.DepthwiseConv2D(
            3, padding="same", use_bias=False, name=f"{name}_depthwise"
        )(x)
    else:
        x = keras.layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
        x = keras.layers.DepthwiseConv2D(
            3, strides=strides, use_bias=False, name=f"{name}_depthwise"
        )(x)
    x = batch_norm(x, f"{name}_depthwise_bn", torch_momentum)
    x = relu6(x, f"{name}_depthwise_relu")
    x = keras.layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_project")(x)
    x = batch_norm(x, f"{name}_project_bn", torch_momentum)
    if strides == 1 and input_channels == filters:
        x = keras.layers.Add(name=f"{name}_add")([inputs, x])
    return x


def subsample(x, name):
    """Keeps every second row and column (``x[:, ::2, ::2]``), UNISAL's stride trick.

    A 1x1 average pool with stride 2 selects exactly those pixels and is a built-in,
    serialisable layer.
    """
    return keras.layers.AveragePooling2D(pool_size=1, strides=2, name=name)(x)


def skip_connection(x, filters, name, dropout=0.6, expand_ratio=2, torch_momentum=0.1):
    """UNISAL's skip branch: expand (1x1), BN, ReLU6, dropout, reduce (1x1 + bias), BN.

    Args:
        x: encoder features.
        filters: output channels.
        name: prefix of the layer names (``skip_2x``, ``skip_4x``).
        dropout: rate of the channel-wise (spatial) dropout after the expansion.
        expand_ratio: hidden channels per input channel.
        torch_momentum: BatchNorm momentum in PyTorch's convention.

    Returns:
        The branch output with ``filters`` channels.
    """
    hidden_channels = int(round(x.shape[-1] * expand_ratio))
    x = pointwise_conv_bn_relu6(x, hidden_channels, f"{name}_expansion", torch_momentum)
    x = keras.layers.SpatialDropout2D(dropout, name=f"{name}_dropout")(x)
    x = keras.layers.Conv2D(filters, 1, use_bias=True, name=f"{name}_reduction")(x)
    return batch_norm(x, f"{name}_reduction_bn", torch_momentum)


def gaussian_smoothing_kernel(size=41, log_std=-2.0) -> np.ndarray:
    """UNISAL's initial smoothing kernel: a normalised 2-D Gaussian.

    The Gaussian has mean 0.5 and standard deviation ``exp(log_std)`` in [0, 1]
    coordinates over the ``size`` taps (sampled at ``linspace(0, 1, size)``): with
    the defaults about 5.4 pixels at input resolution.

    Args:
        size: kernel height and width (odd).
        log_std: natural log of the standard deviation in kernel-width units.

    Returns:
        float32 array (size, size, 1, 1), a Conv2D kernel summing to 1.
    """
    grid = np.linspace(0.0, 1.0, size)
    profile = np.exp(-(((grid - 0.5) / np.exp(log_std)) ** 2) / 2.0)
    kernel = np.outer(profile, profile)
    kernel /= kernel.sum()
    return kernel.astype("float32")[:, :, None, None]


@keras.saving.register_keras_serializable(package="tfsal")
class GaussianSmoothingInitializer(keras.initializers.Initializer):
    """Initialises a (size, size, 1, 1) kernel with ``gaussian_smoothing_kernel``.

    Args:
        log_std: natural log of the standard deviation in kernel-width units.
    """

    def __init__(self, log_std=-2.0):
        self.log_std = log_std

    def __call__(self, shape, dtype=None):
        """Returns the normalised Gaussian kernel of ``shape``."""
        size = shape[0]
        if len(shape) != 4 or shape[1] != size or tuple(shape[2:]) != (1, 1) or size % 2 == 0:
            raise ValueError(
                "GaussianSmoothingInitializer builds odd (size, size, 1, 1) kernels. "
                f"Received: shape={tuple(shape)}"
            )
        kernel = gaussian_smoothing_kernel(size, self.log_std)
        return keras.ops.convert_to_tensor(kernel, dtype=dtype or "float32")

    def get_config(self):
        """Returns the constructor arguments."""
        return {"log_std": self.log_std}
