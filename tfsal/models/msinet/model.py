"""MSI-Net, the contextual encoder-decoder network for visual saliency prediction.

Kroner, Senden, Driessens and Goebel, "Contextual encoder-decoder network for visual
saliency prediction", Neural Networks 129 (2020) 261-270 (arXiv 1902.06634); the
original TF1 code is github.com/alexanderkroner/saliency (MIT licence).

The layout reproduces the released model so its checkpoints load by name
(``tfsal.weights.msinet`` maps ``conv1/conv1_1/kernel`` to the layer ``conv1_1``):

- input RGB in [0, 255] minus ``[103.939, 116.779, 123.68]`` in that order: the
  Caffe *BGR* means subtracted from *RGB* channels, a quirk of the release that the
  weights depend on;
- VGG16 encoder: pool4 and pool5 are 2x2 max pools with stride 1 and "same"
  padding, conv5 uses dilation 2, and the encoder output is the concatenation of
  pool3, pool4 and pool5 (256 + 512 + 512 = 1280 channels at 1/8);
- ASPP: 1x1, and 3x3 with dilation 4, 8 and 12, plus a global branch (spatial mean,
  1x1, copied back over the grid), 256 channels each, fused by a 1x1 to 256;
- decoder: three times bilinear x2 then 3x3 conv + ReLU (128, 64, 32), then a
  linear 3x3 conv to one channel;
- output: per-image min-max normalisation (a map, not a density).

``legacy_resize=True`` (the default) upsamples on the TF1 ``resize_bilinear`` grid the
weights were trained with; ``False`` uses the TF2 half-pixel grid.
"""

import os

import keras

from tfsal.conventions import MAP
from tfsal.layers.bilinear_upsampling import BilinearUpsampling2D
from tfsal.models.features import FeatureInfo, TapSelection, build_tapped_model
from tfsal.models.msinet.architecture import (
    ASPP_CHANNELS,
    ASPP_RATES,
    CAFFE_MEAN_AS_RELEASED,
    DECODER_CHANNELS,
    ENCODER_STAGES,
)
from tfsal.models.msinet.layers import MinMaxNormalization, SpatialBroadcast
from tfsal.models.registry import register_model

# Modules, not names: tfsal.weights.msinet imports this family's architecture, so either
# side may be imported first.
from tfsal.weights import msinet as msinet_weights
from tfsal.weights import vgg16 as vgg16_weights


def _conv(x, filters, kernel_size, name, dilation=1, activation="relu"):
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        padding="same",
        dilation_rate=dilation,
        activation=activation,
        name=name,
    )(x)


def _encoder(image, tap_tensors, feature_info):
    x = keras.layers.Normalization(
        mean=list(CAFFE_MEAN_AS_RELEASED), variance=[1.0, 1.0, 1.0], name="caffe_mean_subtraction"
    )(image)
    pooled = []
    for stage, convolutions, channels, dilation in ENCODER_STAGES:
        for index in range(1, convolutions + 1):
            x = _conv(x, channels, 3, f"conv{stage}_{index}", dilation=dilation)
        last = f"conv{stage}_{convolutions}"
        stride = 2 ** min(stage - 1, 3)
        tap_tensors[last] = x
        feature_info.append(FeatureInfo(last, channels, stride))
        # pool1-3 halve the resolution; pool4 and pool5 keep it (stride 1, "same").
        if stage <= 3:
            x = keras.layers.MaxPooling2D(2, strides=2, name=f"pool{stage}")(x)
        else:
            x = keras.layers.MaxPooling2D(2, strides=1, padding="same", name=f"pool{stage}")(x)
        if stage >= 3:
            tap_tensors[f"pool{stage}"] = x
            feature_info.append(FeatureInfo(f"pool{stage}", channels, 8))
            pooled.append(x)
    encoder = keras.layers.Concatenate(name="encoder_concat")(pooled)
    tap_tensors["encoder"] = encoder
    feature_info.append(FeatureInfo("encoder", 1280, 8))
    return encoder


def _aspp(features, tap_tensors, feature_info):
    branches = [_conv(features, ASPP_CHANNELS, 1, "aspp_conv1_1")]
    tap_tensors["aspp_1x1"] = branches[0]
    feature_info.append(FeatureInfo("aspp_1x1", ASPP_CHANNELS, 8))
    for index, rate in enumerate(ASPP_RATES, start=2):
        branch = _conv(features, ASPP_CHANNELS, 3, f"aspp_conv1_{index}", dilation=rate)
        tap_tensors[f"aspp_rate{rate}"] = branch
        feature_info.append(FeatureInfo(f"aspp_rate{rate}", ASPP_CHANNELS, 8))
        branches.append(branch)
    context = keras.layers.GlobalAveragePooling2D(keepdims=True, name="aspp_global_mean")(features)
    context = _conv(context, ASPP_CHANNELS, 1, "aspp_conv1_5")
    context = SpatialBroadcast(name="aspp_global_broadcast")([context, features])
    tap_tensors["aspp_global"] = context
    feature_info.append(FeatureInfo("aspp_global", ASPP_CHANNELS, 8))
    branches.append(context)
    x = keras.layers.Concatenate(name="aspp_concat")(branches)
    x = _conv(x, ASPP_CHANNELS, 1, "aspp_conv2")
    tap_tensors["aspp"] = x
    feature_info.append(FeatureInfo("aspp", ASPP_CHANNELS, 8))
    return x


def _decoder(x, legacy_resize, tap_tensors, feature_info):
    stride = 8
    for index, channels in enumerate(DECODER_CHANNELS, start=1):
        x = BilinearUpsampling2D(
            2, half_pixel_centers=not legacy_resize, name=f"decoder_upsample{index}"
        )(x)
        x = _conv(x, channels, 3, f"decoder_conv{index}")
        stride //= 2
        tap_tensors[f"decoder{index}"] = x
        feature_info.append(FeatureInfo(f"decoder{index}", channels, stride))
    logits = _conv(x, 1, 3, "decoder_conv4", activation=None)
    tap_tensors["logits"] = logits
    feature_info.append(FeatureInfo("logits", 1, 1))
    return logits


@register_model(
    "msinet",
    output=MAP,
    size_multiple=8,
    default_input_size=(240, 320),
    # The VGG16 convolutions conv1_1 ... conv5_3 (the ASPP and decoder layers are
    # prefixed aspp_ and decoder_).
    encoder_layer_prefixes=("conv",),
)
def msinet(
    *,
    taps: TapSelection = (),
    weights: str | os.PathLike | None = None,
    encoder_weights: str | os.PathLike | None = None,
    input_size: tuple[int, int] | None = None,
    legacy_resize: bool = True,
) -> keras.Model:
    """Builds MSI-Net.

    Args:
        taps: which intermediate outputs to expose (see ``select_taps``).
        weights: weights of the whole model: a released TF1 training checkpoint
            (prefix or ``.index`` file), a frozen GraphDef (``.pb``), a TF2
            SavedModel folder, or a Keras ``.weights.h5``; the format is detected
            from the path (``tfsal.weights.msinet.load_msinet_weights``).
        encoder_weights: VGG16 weights for the encoder only: a Keras VGG16 /
            HED ``.weights.h5`` file or ``"imagenet"`` (downloads
            ``keras.applications.VGG16``). Ignored for layers that ``weights`` sets.
        input_size: (height, width) to fix the input shape; ``None`` accepts any size
            whose sides are multiples of 8. ``DATASET_INPUT_SIZES`` lists the
            original sizes per data set.
        legacy_resize: upsample on the TF1 ``resize_bilinear`` grid (no half-pixel
            centres), as the released weights expect.

    Returns:
        A functional model: ``(batch, H, W, 3)`` RGB in [0, 255] -> dict with
        ``"saliency"`` (``(batch, H, W, 1)`` in [0, 1]) and the chosen taps.

    Raises:
        ValueError: for an input size that is not a multiple of 8 or unusable weights.
    """
    height, width = input_size or (None, None)

    image = keras.Input(shape=(height, width, 3), name="image")
    tap_tensors: dict = {}
    feature_info: list[FeatureInfo] = []
    features = _encoder(image, tap_tensors, feature_info)
    context = _aspp(features, tap_tensors, feature_info)
    logits = _decoder(context, legacy_resize, tap_tensors, feature_info)
    saliency = MinMaxNormalization(epsilon=1e-7, name="output")(logits)
    model = build_tapped_model(image, saliency, tap_tensors, feature_info, taps, name="msinet")

    if encoder_weights is not None:
        vgg16_weights.load_vgg16_encoder(model, encoder_weights)
    if weights is not None:
        msinet_weights.load_msinet_weights(model, weights)
    return model
