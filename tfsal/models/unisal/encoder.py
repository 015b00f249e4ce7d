"""UNISAL's MobileNetV2 encoder: its layout, normalisation and layers.

Droste, Jiao and Noble (ECCV 2020). The encoder is shared by the UNISAL model
(``tfsal.models.unisal.model``), the ImageNet weight import and its classifier check
(``tfsal.weights.mobilenet_v2``) and training (``encoder_layers`` freezes it), so it
lives in this module, which imports only the family's blocks.

The encoder reproduces UNISAL's stride trick: the first block of the 1/16 and the
1/32 stages runs at stride 1, its output is tapped (``feat_4x``, ``feat_2x``) and
then subsampled with ``[:, ::2, ::2]``. The other strided blocks use stride 2 with
symmetric padding, which gives exactly the same result more cheaply.
"""

import keras

from tfsal.models.unisal import blocks

# torchvision's ImageNet MobileNetV2 weights, as named in the shared weights folder.
IMAGENET_FILE = "mobilenet_v2-b0353104.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# MobileNetV2 inverted-residual stages: (expand ratio, channels, blocks, stride).
ENCODER_STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32
BOTTLENECK_CHANNELS = 1280
ENCODER_LAYER_PREFIXES = ("stem_", "block_", "head")
# Encoder blocks (``features.N``) whose stride-1 output is tapped before subsampling.
SKIP_BLOCKS = {7: "feat_4x", 14: "feat_2x"}
# Encoder blocks whose output is exposed as a tap (the end of each stage).
STAGE_END_TAPS = (1, 3, 6, 10, 13, 16, 17)

# PyTorch BatchNorm momentum of the released encoder ("static_bn_momentum").
ENCODER_BN_MOMENTUM = 0.1


def imagenet_normalization(name="imagenet_normalization"):
    """Maps RGB in [0, 255] to ImageNet-standardised values (torchvision convention)."""
    return keras.layers.Normalization(
        mean=[255.0 * m for m in IMAGENET_MEAN],
        variance=[(255.0 * s) ** 2 for s in IMAGENET_STD],
        name=name,
    )


def mobilenet_v2_encoder(images):
    """UNISAL's MobileNetV2 encoder on normalised images.

    Args:
        images: (batch, height, width, 3) ImageNet-standardised tensor.

    Returns:
        A dict of the encoder taps: ``stem``, ``block_N`` at the end of each stage,
        ``feat_4x`` (1/8, 64 ch), ``feat_2x`` (1/16, 160 ch) and ``bottleneck``
        (1/32, 1280 ch).
    """
    taps = {}
    x = blocks.stem(images, STEM_CHANNELS)
    taps["stem"] = x
    index = 1
    for expand_ratio, channels, num_blocks, stage_stride in ENCODER_STAGES:
        for block in range(num_blocks):
            name = f"block_{index}"
            skip_tap = SKIP_BLOCKS.get(index)
            # Skip blocks run at stride 1 so their tap keeps the finer resolution.
            strides = 1 if skip_tap or block > 0 else stage_stride
            x = blocks.inverted_residual(
                x, channels, expand_ratio, name, strides=strides, torch_momentum=ENCODER_BN_MOMENTUM
            )
            if skip_tap:
                taps[skip_tap] = x
                x = blocks.subsample(x, f"{name}_subsample")
            if index in STAGE_END_TAPS:
                taps[name] = x
            index += 1
    x = blocks.pointwise_conv_bn_relu6(x, BOTTLENECK_CHANNELS, "head", ENCODER_BN_MOMENTUM)
    taps["bottleneck"] = x
    return taps


def encoder_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The MobileNetV2 encoder layers of a UNISAL model, e.g. to freeze them.

    Args:
        model: a model built by ``tfsal.models.get("unisal")``.

    Returns:
        The layers named ``stem_*``, ``block_*`` and ``head*``, in model order.
    """
    return [layer for layer in model.layers if layer.name.startswith(ENCODER_LAYER_PREFIXES)]
