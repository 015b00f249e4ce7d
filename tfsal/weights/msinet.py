"""Loads the released MSI-Net weights into the Keras MSI-Net.

The original TF1 code names every convolution ``<scope>/<layer>/{kernel,bias}``
(``conv1/conv1_1/kernel``, ``aspp/conv1_5/bias``, ``decoder/conv4/kernel``); Keras 3
forbids ``/`` in layer names, so ``tfsal.models.msinet`` names the same layers
``conv1_1``, ``aspp_conv1_5`` and ``decoder_conv4``. Kernels are HWIO in both (also
in the NCHW "gpu" graphs), so tensors are copied without transposition.

The mapping is strict: every MSI-Net weight must be found exactly once with the
right shape, and every weight-like tensor of the file (a name ending in ``kernel``
or ``bias``) must belong to MSI-Net. Optimizer state in training checkpoints (Adam
slots, ``beta1_power``, ``global_step``) is skipped. Names may carry a prefix
(``model/conv1/conv1_1/kernel``), and the Keras layer names of this package
(``aspp_conv1_5/kernel``) are accepted as well, so SavedModels exported from either
side load.
"""

import os
from pathlib import Path

import keras
import numpy as np

from tfsal.models.msinet.architecture import ASPP_RATES, DECODER_CHANNELS, ENCODER_STAGES
from tfsal.weights import tf_checkpoint
from tfsal.weights.keras_weights import load_keras_weights

_OPTIMIZER_SUFFIXES = ("/Adam", "/Adam_1", "/Momentum", "/RMSProp", "/RMSProp_1")
_OPTIMIZER_NAMES = ("beta1_power", "beta2_power", "global_step")


def layer_scopes() -> dict[str, str]:
    """Returns ``{Keras layer name: original TF1 variable scope}`` for MSI-Net."""
    scopes = {}
    for stage, convolutions, _, _ in ENCODER_STAGES:
        for index in range(1, convolutions + 1):
            scopes[f"conv{stage}_{index}"] = f"conv{stage}/conv{stage}_{index}"
    for index in range(1, len(ASPP_RATES) + 3):
        scopes[f"aspp_conv1_{index}"] = f"aspp/conv1_{index}"
    scopes["aspp_conv2"] = "aspp/conv2"
    for index in range(1, len(DECODER_CHANNELS) + 2):
        scopes[f"decoder_conv{index}"] = f"decoder/conv{index}"
    return scopes


def _is_optimizer_state(name: str) -> bool:
    return name.endswith(_OPTIMIZER_SUFFIXES) or name.split("/")[-1] in _OPTIMIZER_NAMES


def _strip_device_suffix(name: str) -> str:
    return name[: -len(":0")] if name.endswith(":0") else name


def _is_weight(name: str) -> bool:
    """Whether a tensor name looks like a model weight (not optimizer state or a constant)."""
    name = _strip_device_suffix(name)
    return name.split("/")[-1] in ("kernel", "bias") and not _is_optimizer_state(name)


def _original_key(name: str, scopes: dict[str, str]) -> str | None:
    """Maps a weight name to ``<scope>/<layer>/<kernel|bias>``; None if not MSI-Net's."""
    parts = _strip_device_suffix(name).split("/")
    if len(parts) >= 3 and "/".join(parts[-3:-1]) in scopes.values():
        return "/".join(parts[-3:])
    if len(parts) >= 2 and parts[-2] in scopes:
        return f"{scopes[parts[-2]]}/{parts[-1]}"
    return None


def map_msinet_tensors(tensors: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """Picks MSI-Net's weights out of a file's tensors, keyed by original name.

    Args:
        tensors: ``{name: value}`` as read from a checkpoint, graph or SavedModel.
        source: where the tensors came from, for error messages.

    Returns:
        ``{"conv1/conv1_1/kernel": value, ...}``: exactly MSI-Net's 46 tensors.

    Raises:
        ValueError: naming the key when a weight is missing, found twice, or a
            weight-like tensor does not belong to MSI-Net.
    """
    scopes = layer_scopes()
    mapped: dict[str, np.ndarray] = {}
    found_as: dict[str, str] = {}
    for name, value in tensors.items():
        if not _is_weight(name):
            continue
        key = _original_key(name, scopes)
        if key is None:
            raise ValueError(
                f"{source} holds the tensor {name!r}, which is not part of MSI-Net. "
                "Is this an MSI-Net checkpoint?"
            )
        if key in mapped:
            raise ValueError(
                f"{source} holds MSI-Net's {key!r} twice: as {found_as[key]!r} and {name!r}."
            )
        mapped[key] = np.asarray(value)
        found_as[key] = name
    expected = [f"{scope}/{kind}" for scope in scopes.values() for kind in ("kernel", "bias")]
    missing = [key for key in expected if key not in mapped]
    if missing:
        raise ValueError(
            f"{source} lacks {len(missing)} of MSI-Net's {len(expected)} weights, "
            f"first {missing[0]!r} (missing: {', '.join(missing[:6])}"
            f"{', ...' if len(missing) > 6 else ''})."
        )
    return mapped


def msinet_original_tensors(model: keras.Model) -> dict[str, np.ndarray]:
    """Returns a Keras MSI-Net's weights under the original TF1 variable names."""
    tensors = {}
    for layer_name, scope in layer_scopes().items():
        layer = model.get_layer(layer_name)
        tensors[f"{scope}/kernel"] = keras.ops.convert_to_numpy(layer.kernel)
        tensors[f"{scope}/bias"] = keras.ops.convert_to_numpy(layer.bias)
    return tensors


def assign_msinet_tensors(model: keras.Model, tensors: dict[str, np.ndarray], source: str) -> None:
    """Copies mapped tensors (see ``map_msinet_tensors``) into a Keras MSI-Net.

    Raises:
        ValueError: naming the key of the first tensor whose shape does not match.
    """
    assignments = []
    for layer_name, scope in layer_scopes().items():
        layer = model.get_layer(layer_name)
        for kind, variable in (("kernel", layer.kernel), ("bias", layer.bias)):
            key = f"{scope}/{kind}"
            value = tensors[key]
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(
                    f"{source}: {key!r} has shape {tuple(value.shape)}, but MSI-Net's layer "
                    f"{layer_name!r} expects {tuple(variable.shape)}."
                )
            assignments.append((variable, value))
    for variable, value in assignments:
        variable.assign(value.astype(variable.dtype))


def load_msinet_weights(model: keras.Model, path: str | os.PathLike) -> None:
    """Loads MSI-Net weights from any supported format into ``model``.

    The format is detected from the path (``tf_checkpoint.detect_format``): a TF1
    training checkpoint, a frozen GraphDef, a SavedModel or a Keras weight file.

    Args:
        model: a model built by ``tfsal.models.get("msinet")``.
        path: the weight file, checkpoint prefix or SavedModel folder.

    Raises:
        FileNotFoundError: if nothing exists at ``path``.
        ValueError: for unreadable files or tensors that do not fit MSI-Net.
    """
    weight_format = tf_checkpoint.detect_format(path)
    if weight_format == tf_checkpoint.KERAS_WEIGHTS:
        load_keras_weights(model, path)
        return
    source = f"{weight_format.replace('_', ' ')} {Path(path)}"
    tensors = map_msinet_tensors(tf_checkpoint.read_tensors(path), source)
    assign_msinet_tensors(model, tensors, source)
