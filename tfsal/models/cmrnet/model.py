"""CMRNet: a saliency encoder-decoder built from cross-concatenated multi-scale residual blocks.

CMRNet is the model proposed by Malladi, Mukhopadhyay, Larabi and Chaudhury in
"Deriving Explanation of Deep Visual Saliency Models" (arXiv 2109.03575, 2021) and
analysed in "Towards explainable deep visual saliency models" (CVIU 2023). Only
its name and a one-line description reached us, so this is our construction; every
choice below is ours and is made to keep the model transparent and small enough to
train on two CPU cores.

- **Input colour transform.** The image is scaled to [0, 1] and passed through a
  learned linear 1x1 convolution from RGB to three channels (``colour_transform``,
  with bias). The CVIU follow-up reports that CMRNet's first layer learns a
  representation close to YUV; a separate, purely linear 3x3 matrix lets the
  interpretation report read that transform directly from the layer's kernel and
  compare it with YUV, opponent and Lab. Inputs in [0, 1] make the kernel comparable
  with the standard YUV matrix, which is defined on [0, 1] RGB.
- **Encoder.** A 3x3 stride-2 stem, then four stages at 1/2, 1/4, 1/8 and 1/16 of
  the input with widths 24, 48, 96 and 192. Every stage after the first starts
  with a 3x3 stride-2 convolution; stages hold 1, 1, 2 and 1
  ``CrossConcatResidualBlock`` (3x3 and dilated 3x3 branches, crosswise
  concatenation, 1x1 fusion, residual sum). Most blocks sit at 1/8, the resolution
  the explainable model reconstructs best. The stem and strided convolutions use
  batch normalisation, which makes training from scratch with small batches
  stable; the residual blocks stay free of it so that their identity path is exact.
- **Global context (optional).** ``global_context_stages`` puts a
  ``GlobalContextGate`` (CBAM's channel attention from each channel's spatial mean
  and maximum) after chosen encoder stages: saliency is relative to the whole image,
  and the gate hands every location the image's statistics. It is off by default
  because it did not pay off where we measured it: on the default run's pop-out
  arrays (96x96 inputs, where stage 4 already sees the whole image) CMRNet reached
  validation CC 0.934 without gates and 0.932 with gates after stages 3 and 4
  (BENCHMARKS.md, "Default run"); what made CMRNet find the singletons was training
  on 1800 arrays instead of 240. Larger inputs may need it.
- **Decoder.** Three stages mirror the encoder: bilinear x2 upsampling,
  concatenation with the encoder stage of the same resolution (skip connection),
  3x3 convolution, batch normalisation, ReLU; widths 96, 48 and 24. Upsampling uses
  ``BilinearUpsampling2D`` (half-pixel grid, the same values as
  ``keras.layers.UpSampling2D``), because ``UpSampling2D`` cannot be exported as a
  SavedModel whose height and width are unknown.
- **Output.** A 1x1 convolution to one channel of logits at 1/2, bilinear x2 to the
  input size and a log-softmax over the pixels: a log-density, the form the KLD
  training loss and the probabilistic metrics expect.

With the default widths the model has about 1.65 M parameters and costs about
0.45 GMAC per 128x128 image: one training step on eight 128x128 images took about
2 s on two busy CPU cores (widths 32-256, 2.9 M parameters, took twice as long).
Every stage is a named tap. Input height and width must be multiples of 16.
"""

import os

import keras

from tfsal.conventions import LOG_DENSITY
from tfsal.layers.bilinear_upsampling import BilinearUpsampling2D
from tfsal.layers.spatial_log_softmax import SpatialLogSoftmax
from tfsal.models.cmrnet.blocks import CrossConcatResidualBlock
from tfsal.models.cmrnet.global_context import GlobalContextGate
from tfsal.models.features import FeatureInfo, TapSelection, build_tapped_model
from tfsal.models.registry import register_model
from tfsal.weights import keras_weights

DEFAULT_WIDTHS = (24, 48, 96, 192)
DEFAULT_BLOCKS_PER_STAGE = (1, 1, 2, 1)
DEFAULT_GLOBAL_CONTEXT_STAGES = ()


def _conv_bn_relu(x, filters, strides, name):
    x = keras.layers.Conv2D(
        filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x)


def _validate(widths, blocks_per_stage, global_context_stages):
    if any(stage not in (1, 2, 3, 4) for stage in global_context_stages):
        raise ValueError(
            "global_context_stages must hold encoder stages 1 to 4. "
            f"Received: global_context_stages={global_context_stages!r}"
        )
    if len(widths) != 4 or any(not isinstance(w, int) or w < 2 for w in widths):
        raise ValueError(
            f"widths must be four ints >= 2, one per encoder stage. Received: widths={widths!r}"
        )
    if len(blocks_per_stage) != 4 or any(not isinstance(n, int) or n < 1 for n in blocks_per_stage):
        raise ValueError(
            "blocks_per_stage must be four ints >= 1. "
            f"Received: blocks_per_stage={blocks_per_stage!r}"
        )


# The four encoder stages feed the whole decoder (three skips and its input).
@register_model(
    "cmrnet",
    output=LOG_DENSITY,
    size_multiple=16,
    default_input_size=(240, 320),
    default_taps=("stage1", "stage2", "stage3", "stage4"),
)
def cmrnet(
    *,
    taps: TapSelection = (),
    weights: str | os.PathLike | None = None,
    encoder_weights: str | os.PathLike | None = None,
    input_size: tuple[int, int] | None = None,
    widths: tuple[int, ...] = DEFAULT_WIDTHS,
    blocks_per_stage: tuple[int, ...] = DEFAULT_BLOCKS_PER_STAGE,
    wide_dilation: int = 2,
    global_context_stages: tuple[int, ...] = DEFAULT_GLOBAL_CONTEXT_STAGES,
) -> keras.Model:
    """Builds CMRNet.

    Args:
        taps: which intermediate outputs to expose (see ``select_taps``).
        weights: a ``.weights.h5`` file saved from a CMRNet of the same configuration.
        encoder_weights: not supported: CMRNet has no pretrained encoder (it registers
            no encoder layers), so the registry refuses anything but ``None``.
        input_size: (height, width) to fix the input shape; ``None`` accepts any size
            whose sides are multiples of 16.
        widths: channels of the four encoder stages (1/2, 1/4, 1/8, 1/16); the
            decoder mirrors the first three.
        blocks_per_stage: residual blocks in each encoder stage.
        wide_dilation: dilation of the wide branch in every residual block.
        global_context_stages: encoder stages (1 to 4) whose output passes through a
            ``GlobalContextGate``.

    Returns:
        A functional model: ``(batch, H, W, 3)`` RGB in [0, 255] -> dict with
        ``"saliency"`` (log-density, ``(batch, H, W, 1)``) and the chosen taps.

    Raises:
        ValueError: for an invalid configuration, input size or ``encoder_weights``.
    """
    widths, blocks_per_stage = tuple(widths), tuple(blocks_per_stage)
    global_context_stages = tuple(global_context_stages)
    _validate(widths, blocks_per_stage, global_context_stages)
    height, width = input_size or (None, None)

    image = keras.Input(shape=(height, width, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale_to_unit")(image)
    colour = keras.layers.Conv2D(3, 1, name="colour_transform")(x)
    tap_tensors = {"colour": colour}
    feature_info = [FeatureInfo("colour", 3, 1)]

    x = _conv_bn_relu(colour, widths[0], 2, "stem")
    tap_tensors["stem"] = x
    feature_info.append(FeatureInfo("stem", widths[0], 2))
    encoder_outputs = []
    for stage, (channels, blocks) in enumerate(zip(widths, blocks_per_stage, strict=True)):
        stage_name = f"stage{stage + 1}"
        if stage > 0:
            x = _conv_bn_relu(x, channels, 2, f"{stage_name}_down")
        for block in range(blocks):
            x = CrossConcatResidualBlock(
                wide_dilation=wide_dilation, name=f"{stage_name}_block{block + 1}"
            )(x)
        if stage + 1 in global_context_stages:
            x = GlobalContextGate(name=f"{stage_name}_context")(x)
        encoder_outputs.append(x)
        tap_tensors[stage_name] = x
        feature_info.append(FeatureInfo(stage_name, channels, 2 ** (stage + 1)))

    for stage in (3, 2, 1):
        decoder_name = f"decoder{stage}"
        x = BilinearUpsampling2D(2, name=f"{decoder_name}_up")(x)
        x = keras.layers.Concatenate(name=f"{decoder_name}_skip")([x, encoder_outputs[stage - 1]])
        x = _conv_bn_relu(x, widths[stage - 1], 1, decoder_name)
        tap_tensors[decoder_name] = x
        feature_info.append(FeatureInfo(decoder_name, widths[stage - 1], 2**stage))

    logits = keras.layers.Conv2D(1, 1, name="readout")(x)
    logits = BilinearUpsampling2D(2, name="readout_up")(logits)
    tap_tensors["logits"] = logits
    feature_info.append(FeatureInfo("logits", 1, 1))
    saliency = SpatialLogSoftmax(name="log_density")(logits)

    model = build_tapped_model(image, saliency, tap_tensors, feature_info, taps, name="cmrnet")
    if weights is not None:
        keras_weights.load_keras_weights(model, weights)
    return model
