"""UNISAL, image mode, as a Keras functional model.

Droste, Jiao and Noble, "Unified Image and Video Saliency Modeling" (ECCV 2020,
arXiv 2003.05477; reference code rdroste/unisal, Apache-2.0). For still images
UNISAL bypasses its ConvGRU, so the image path is:

    MobileNetV2 encoder (1/32, 1280 ch) + 16 learned Gaussian prior maps
    -> post-CNN inverted residual (256 ch)
    -> bilinear x2, concat skip_2x(feat_2x) -> inverted residual (128 ch) -> bilinear x2
    -> concat skip_4x(feat_4x) -> inverted residual (64 ch) -> 1x1 adaptation (1 ch)
    -> nearest x8 -> edge padding + 41x41 smoothing -> bilinear to the target size
    -> log-softmax over pixels.

The released model keeps one set of BatchNorm statistics, Gaussian priors,
adaptation and smoothing per data source ("domain"); this port is the "SALICON"
domain, the one UNISAL uses for all still images (SALICON, MIT1003, MIT300).

The encoder (``tfsal.models.unisal.encoder``) reproduces UNISAL's stride trick.

The two bilinear x2 steps are ``BilinearUpsampling2D`` on the half-pixel grid
(PyTorch ``align_corners=False``): the same values as
``keras.layers.UpSampling2D(interpolation="bilinear")``, bit for bit, but unlike it
exportable as a SavedModel whose height and width are unknown.
"""

import numbers
import os
from collections.abc import Sequence

import keras

from tfsal.conventions import LOG_DENSITY
from tfsal.layers.bilinear_upsampling import BilinearUpsampling2D
from tfsal.layers.edge_padding import EdgePadding2D
from tfsal.layers.spatial_log_softmax import SpatialLogSoftmax
from tfsal.models.features import FeatureInfo, TapSelection, build_tapped_model
from tfsal.models.registry import register_model
from tfsal.models.unisal import blocks
from tfsal.models.unisal.encoder import (
    BOTTLENECK_CHANNELS,
    ENCODER_LAYER_PREFIXES,
    IMAGENET_FILE,
    STEM_CHANNELS,
    imagenet_normalization,
    mobilenet_v2_encoder,
)
from tfsal.models.unisal.layers import GaussianPriorMaps

# Modules, not names: tfsal.weights imports this family's encoder, so either side may be
# imported first.
from tfsal.weights import mobilenet_v2 as mobilenet_v2_weights
from tfsal.weights import unisal as unisal_weights

POST_CNN_CHANNELS = 256
CHANNELS_2X = 128
CHANNELS_4X = 64
SMOOTHING_SIZE = 41

# PyTorch BatchNorm momenta of the released configuration: 0.1 in the SALICON-domain
# decoder BatchNorms ("static_bn_momentum", as in the encoder), 0.01 in post-CNN.
POST_CNN_BN_MOMENTUM = 0.01
DECODER_BN_MOMENTUM = 0.1

FEATURE_INFO = (
    FeatureInfo("stem", STEM_CHANNELS, 2),
    FeatureInfo("block_1", 16, 2),
    FeatureInfo("block_3", 24, 4),
    FeatureInfo("block_6", 32, 8),
    FeatureInfo("feat_4x", 64, 8),
    FeatureInfo("block_10", 64, 16),
    FeatureInfo("block_13", 96, 16),
    FeatureInfo("feat_2x", 160, 16),
    FeatureInfo("block_16", 160, 32),
    FeatureInfo("block_17", 320, 32),
    FeatureInfo("bottleneck", BOTTLENECK_CHANNELS, 32),
    FeatureInfo("gaussian_maps", 16, 32),
    FeatureInfo("post_cnn", POST_CNN_CHANNELS, 32),
    FeatureInfo("skip_2x", CHANNELS_2X, 16),
    FeatureInfo("upsampling_2", CHANNELS_2X, 16),
    FeatureInfo("skip_4x", CHANNELS_4X, 8),
    FeatureInfo("post_upsampling_2", CHANNELS_4X, 8),
    FeatureInfo("adaptation", 1, 8),
    FeatureInfo("smoothed", 1, 1),
)


def unisal_decoder(tap_tensors, skip_dropout=0.6):
    """UNISAL's image decoder up to the 1x1 adaptation (1/8 resolution, 1 channel).

    Args:
        tap_tensors: the encoder taps (``mobilenet_v2_encoder``); the decoder
            taps (``gaussian_maps``, ``post_cnn``, ``skip_2x``, ``upsampling_2``,
            ``skip_4x``, ``post_upsampling_2``, ``adaptation``) are added to it.
        skip_dropout: channel dropout rate in both skip branches.

    Returns:
        The adaptation logits.
    """
    priors = GaussianPriorMaps(name="gaussian_prior")(tap_tensors["bottleneck"])
    tap_tensors["gaussian_maps"] = priors
    x = keras.layers.Concatenate(name="bottleneck_with_priors")([tap_tensors["bottleneck"], priors])
    x = blocks.inverted_residual(
        x, POST_CNN_CHANNELS, 1, "post_cnn", torch_momentum=POST_CNN_BN_MOMENTUM
    )
    tap_tensors["post_cnn"] = x

    x = BilinearUpsampling2D(2, name="upsampling_1")(x)
    skip_2x = blocks.skip_connection(
        tap_tensors["feat_2x"], CHANNELS_2X, "skip_2x", skip_dropout, 2, DECODER_BN_MOMENTUM
    )
    tap_tensors["skip_2x"] = skip_2x
    x = keras.layers.Concatenate(name="concat_2x")([x, skip_2x])
    x = blocks.inverted_residual(
        x, CHANNELS_2X, 2, "upsampling_2", torch_momentum=DECODER_BN_MOMENTUM
    )
    tap_tensors["upsampling_2"] = x
    x = BilinearUpsampling2D(2, name="upsampling_2_resize")(x)

    skip_4x = blocks.skip_connection(
        tap_tensors["feat_4x"], CHANNELS_4X, "skip_4x", skip_dropout, 2, DECODER_BN_MOMENTUM
    )
    tap_tensors["skip_4x"] = skip_4x
    x = keras.layers.Concatenate(name="concat_4x")([x, skip_4x])
    x = blocks.inverted_residual(
        x, CHANNELS_4X, 2, "post_upsampling_2", torch_momentum=DECODER_BN_MOMENTUM
    )
    tap_tensors["post_upsampling_2"] = x

    x = keras.layers.Conv2D(1, 1, use_bias=True, name="adaptation")(x)
    tap_tensors["adaptation"] = x
    return x


@register_model(
    "unisal",
    output=LOG_DENSITY,
    size_multiple=32,
    default_input_size=(288, 384),
    # The Gaussian prior maps are built for one bottleneck size.
    any_input_size=False,
    encoder_layer_prefixes=ENCODER_LAYER_PREFIXES,
    pretrained_encoder_file=IMAGENET_FILE,
    # The 41x41 Gaussian output smoothing: its kernel gradient costs more than the rest
    # of a training step on a CPU, and a few hundred images cannot improve on the
    # Gaussian.
    fixed_with_frozen_encoder=("smoothing",),
)
def unisal(
    *,
    input_size: Sequence[int],
    target_size: Sequence[int] | None = None,
    taps: TapSelection = (),
    weights: str | os.PathLike | None = None,
    encoder_weights: str | os.PathLike | None = None,
    skip_dropout: float = 0.6,
    name: str = "unisal",
) -> keras.Model:
    """Builds UNISAL's image path (SALICON domain).

    Args:
        input_size: (height, width) of the input, multiples of 32 (see
            ``unisal_input_size`` for UNISAL's choice per image); the registry
            gives (288, 384) when it is not set.
        target_size: (height, width) of the output log-density; ``None`` for the
            input size. UNISAL evaluates at the original image size.
        taps: intermediate outputs to expose next to ``"saliency"`` (``None`` for
            all, an int for the last n, or names from ``FEATURE_INFO``).
        weights: a released UNISAL PyTorch checkpoint (``weights_best.pth``,
            ``weights_ft_mit1003.pth``; the SALICON domain is loaded, the other
            domains and the video ConvGRU are ignored) or a Keras
            ``.weights.h5`` file of this model.
        encoder_weights: ImageNet MobileNetV2 weights for the encoder: a PyTorch
            file with torchvision or tonylins key names, or ``"imagenet"`` for
            the torchvision file in the shared weights folder.
        skip_dropout: channel dropout rate in both skip branches (UNISAL: 0.6).
        name: the model's name.

    Returns:
        A functional model mapping (batch, height, width, 3) RGB in [0, 255] to a
        dict with ``"saliency"``, a (batch, *target_size, 1) log-density, and the
        requested taps.

    Raises:
        ValueError: if the input size is not made of multiples of 32, or a
            weight file does not match the model (``CheckpointError``).
        FileNotFoundError: if a weight file does not exist.
    """
    height, width = input_size
    if target_size is not None:
        target_size = _check_size("target_size", target_size)
    if not 0.0 <= skip_dropout < 1.0:
        raise ValueError(f"skip_dropout must be in [0, 1). Received: skip_dropout={skip_dropout}")
    images = keras.Input(shape=(height, width, 3), name="image")
    normalised = imagenet_normalization()(images)
    tap_tensors = mobilenet_v2_encoder(normalised)

    x = unisal_decoder(tap_tensors, skip_dropout)
    x = keras.layers.UpSampling2D(8, interpolation="nearest", name="upsampling_8x")(x)
    x = EdgePadding2D(SMOOTHING_SIZE // 2, name="smoothing_pad")(x)
    x = keras.layers.Conv2D(
        1,
        SMOOTHING_SIZE,
        use_bias=False,
        kernel_initializer=blocks.GaussianSmoothingInitializer(),
        name="smoothing",
    )(x)
    tap_tensors["smoothed"] = x
    if target_size is not None and tuple(target_size) != (height, width):
        x = keras.layers.Resizing(*target_size, interpolation="bilinear", name="resize_to_target")(
            x
        )
    saliency = SpatialLogSoftmax(name="log_density")(x)

    model = build_tapped_model(images, saliency, tap_tensors, FEATURE_INFO, taps, name)
    # Whole-model weights are loaded last, so they override encoder weights when both
    # are given.
    if encoder_weights is not None:
        mobilenet_v2_weights.load_mobilenet_v2_encoder(model, encoder_weights)
    if weights is not None:
        unisal_weights.load_unisal_weights(model, weights)
    return model


def _check_size(argument, size):
    if (
        isinstance(size, str)
        or not isinstance(size, Sequence)
        or len(size) != 2
        or not all(isinstance(side, numbers.Integral) and side > 0 for side in size)
    ):
        raise ValueError(
            f"{argument} must be (height, width) with positive integer sides. "
            f"Received: {argument}={size!r}"
        )
    return int(size[0]), int(size[1])
