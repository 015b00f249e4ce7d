"""ImageNet MobileNetV2 weights (PyTorch) for UNISAL's encoder.

Two PyTorch layouts of the same network are in use; both map onto the Keras layer
names of ``tfsal.models.unisal``:

- torchvision (``mobilenet_v2-b0353104.pth``): inverted residual blocks number
  their modules ``conv.0.0`` (conv of the first ConvBNReLU), ``conv.0.1`` (its BN),
  ``conv.1.0``/``conv.1.1`` (second ConvBNReLU), ``conv.2`` and ``conv.3`` (the
  linear projection and its BN);
- tonylins/pytorch-mobilenet-v2, which UNISAL ships and embeds: a flat
  ``conv.0 .. conv.7`` sequence with the ReLU6s at indices 2 and 5.

The classifier (``classifier.1``) is not part of the encoder and is ignored by
``load_mobilenet_v2_encoder``; ``mobilenet_v2_classifier`` uses it to check an
import against ImageNet predictions.
"""

import os
import re

import keras

from tfsal import paths
from tfsal.models.unisal import encoder as unisal_encoder
from tfsal.weights.torch_mapping import ModuleMapping, load_state_dict_into
from tfsal.weights.torch_reader import CheckpointError, read_state_dict

# Module indices inside one inverted residual block, per layout:
# (expand conv, expand BN, depthwise conv, depthwise BN, project conv, project BN).
_BLOCK_INDICES = {
    "torchvision": {
        "expanded": ("0.0", "0.1", "1.0", "1.1", "2", "3"),
        "plain": (None, None, "0.0", "0.1", "1", "2"),
    },
    "tonylins": {
        "expanded": ("0", "1", "3", "4", "6", "7"),
        "plain": (None, None, "0", "1", "3", "4"),
    },
}


def inverted_residual_mappings(
    layer_prefix: str, torch_prefix: str, expanded: bool, layout: str, batch_norm_child: str = ""
) -> list[ModuleMapping]:
    """Mappings of one inverted residual block built by ``blocks.inverted_residual``.

    Args:
        layer_prefix: the Keras block name (``block_3``, ``post_cnn``).
        torch_prefix: the PyTorch module holding ``conv`` (``features.3``,
            ``post_cnn.inv_res``).
        expanded: whether the block has an expansion convolution (ratio != 1).
        layout: ``"torchvision"`` or ``"tonylins"``.
        batch_norm_child: suffix of domain-specific BatchNorms (``".bn_SALICON"``).

    Returns:
        The block's module mappings.
    """
    indices = _BLOCK_INDICES[layout]["expanded" if expanded else "plain"]
    conv = f"{torch_prefix}.conv"
    mappings = []
    if expanded:
        mappings += [
            ModuleMapping(f"{layer_prefix}_expand", "conv", f"{conv}.{indices[0]}"),
            ModuleMapping(
                f"{layer_prefix}_expand_bn", "batch_norm", f"{conv}.{indices[1]}{batch_norm_child}"
            ),
        ]
    mappings += [
        ModuleMapping(f"{layer_prefix}_depthwise", "depthwise", f"{conv}.{indices[2]}"),
        ModuleMapping(
            f"{layer_prefix}_depthwise_bn", "batch_norm", f"{conv}.{indices[3]}{batch_norm_child}"
        ),
        ModuleMapping(f"{layer_prefix}_project", "conv", f"{conv}.{indices[4]}"),
        ModuleMapping(
            f"{layer_prefix}_project_bn", "batch_norm", f"{conv}.{indices[5]}{batch_norm_child}"
        ),
    ]
    return mappings


def encoder_mappings(layout: str, prefix: str = "") -> list[ModuleMapping]:
    """Mappings of the whole MobileNetV2 encoder (``features.0`` .. ``features.18``).

    Args:
        layout: ``"torchvision"`` or ``"tonylins"``.
        prefix: prepended to every PyTorch key (UNISAL checkpoints use ``"cnn."``).

    Returns:
        The encoder's module mappings.
    """
    mappings = [
        ModuleMapping("stem_conv", "conv", f"{prefix}features.0.0"),
        ModuleMapping("stem_bn", "batch_norm", f"{prefix}features.0.1"),
    ]
    index = 1
    for expand_ratio, _channels, num_blocks, _stride in unisal_encoder.ENCODER_STAGES:
        for _ in range(num_blocks):
            mappings += inverted_residual_mappings(
                f"block_{index}", f"{prefix}features.{index}", expand_ratio != 1, layout
            )
            index += 1
    mappings += [
        ModuleMapping("head", "conv", f"{prefix}features.{index}.0"),
        ModuleMapping("head_bn", "batch_norm", f"{prefix}features.{index}.1"),
    ]
    return mappings


def detect_layout(state_dict, prefix: str = "") -> str:
    """Tells torchvision from tonylins key names by the first block's depthwise conv."""
    if f"{prefix}features.1.conv.0.0.weight" in state_dict:
        return "torchvision"
    if f"{prefix}features.1.conv.0.weight" in state_dict:
        return "tonylins"
    raise CheckpointError(
        "Not a MobileNetV2 state dict: neither torchvision ('features.1.conv.0.0.weight') nor "
        f"tonylins ('features.1.conv.0.weight') key names found (prefix {prefix!r}). "
        f"First keys: {list(state_dict)[:4]}"
    )


def resolve_imagenet_path(path: str | os.PathLike) -> str:
    """Maps ``"imagenet"`` to the torchvision file in the shared weights folder."""
    if str(path) == "imagenet":
        return str(paths.shared_weights_dir() / unisal_encoder.IMAGENET_FILE)
    return os.fspath(path)


def read_mobilenet_v2_state_dict(path: str | os.PathLike) -> tuple[dict, str]:
    """Reads an ImageNet MobileNetV2 checkpoint; returns (state dict, layout)."""
    path = resolve_imagenet_path(path)
    state_dict = read_state_dict(path)
    state_dict = {re.sub(r"^module\.", "", key): value for key, value in state_dict.items()}
    if any(key.startswith("cnn.features.") for key in state_dict):
        raise CheckpointError(
            f"{path} is a whole UNISAL checkpoint, not ImageNet encoder weights; "
            "pass it as weights=... instead of encoder_weights=..."
        )
    return state_dict, detect_layout(state_dict)


def load_mobilenet_v2_encoder(model: keras.Model, path: str | os.PathLike) -> None:
    """Loads ImageNet MobileNetV2 weights into the encoder layers of ``model``.

    Args:
        model: a model built by ``tfsal.models.get("unisal")`` (or any model with
            the same encoder layer names).
        path: a PyTorch file with torchvision or tonylins key names, or
            ``"imagenet"`` for the shared torchvision file.

    Raises:
        CheckpointError: if the file is not a MobileNetV2 state dict or a tensor
            is missing, unexpected or mis-shaped.
    """
    state_dict, layout = read_mobilenet_v2_state_dict(path)
    load_state_dict_into(
        model,
        state_dict,
        encoder_mappings(layout),
        source=resolve_imagenet_path(path),
        ignore=lambda key: key.startswith("classifier."),
    )


def mobilenet_v2_classifier(
    weights: str | os.PathLike = "imagenet", input_size=(224, 224)
) -> keras.Model:
    """The ImageNet MobileNetV2 classifier on UNISAL's encoder, to check an import.

    ``encoder -> global average pooling -> dense (1000)``, as torchvision's
    forward pass (dropout is inactive at inference). The input is RGB in [0, 255],
    normalised inside the model as in UNISAL.

    Args:
        weights: a MobileNetV2 checkpoint with a ``classifier.1`` (or
            ``classifier``) linear layer.
        input_size: (height, width) of the input.

    Returns:
        A model mapping images to 1000 ImageNet logits.
    """
    images = keras.Input(shape=(*input_size, 3), name="image")
    features = unisal_encoder.mobilenet_v2_encoder(unisal_encoder.imagenet_normalization()(images))
    pooled = keras.layers.GlobalAveragePooling2D(name="pool")(features["bottleneck"])
    logits = keras.layers.Dense(1000, name="classifier")(pooled)
    model = keras.Model(images, logits, name="mobilenet_v2_classifier")

    state_dict, layout = read_mobilenet_v2_state_dict(weights)
    head = "classifier.1" if "classifier.1.weight" in state_dict else "classifier"
    mappings = encoder_mappings(layout) + [ModuleMapping("classifier", "dense", head)]
    load_state_dict_into(model, state_dict, mappings, source=resolve_imagenet_path(weights))
    return model
