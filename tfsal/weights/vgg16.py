"""Initialises MSI-Net's VGG16 encoder from pretrained VGG16 convolutions.

Sources, all holding the 13 convolutions ``conv1_1`` ... ``conv5_3``:

- the HED edge detector (Xie and Tu, 2015) in the shared folder,
  ``hed_bsds500.weights.h5``: a Keras 3 weight file laid out as
  ``block{1..5}/layers/conv2d{,_1,_2}/vars/{0,1}``, each ``vars`` group carrying
  its layer name (``block1_conv1``) as an attribute; its side outputs are ignored;
- a Keras VGG16 weight file, either Keras 3 (``layers/block1_conv1/vars/{0,1}``)
  or the legacy Keras 2 file that ``keras.applications`` downloads (groups
  ``block1_conv1`` with ``weight_names``);
- ``"imagenet"``: ``keras.applications.VGG16(weights="imagenet")``, which needs to
  download the weights once;
- the TF1 VGG16 checkpoint MSI-Net's training starts from (``vgg16_hybrid.ckpt``,
  names ``conv1_1/weights`` and ``conv1_1/biases``).

These networks were trained on BGR images, while MSI-Net feeds its first
convolution RGB channels. With ``bgr_to_rgb=True`` (the default) the input-channel
axis of ``conv1_1``'s kernel is reversed, so every filter keeps responding to the
colour it was trained on; pass ``False`` to copy the kernel as stored, which is
what the original MSI-Net training did.
"""

import os
import re
from pathlib import Path

import h5py
import keras
import numpy as np

from tfsal.weights import tf_checkpoint

_VGG_LAYER = re.compile(r"^block([1-5])_conv([1-3])$")
_CONVOLUTIONS_PER_BLOCK = {1: 2, 2: 2, 3: 3, 4: 3, 5: 3}


def vgg16_layer_names() -> list[str]:
    """Returns the 13 convolution names in MSI-Net's naming (``conv1_1`` ...)."""
    return [
        f"conv{block}_{index}"
        for block, count in _CONVOLUTIONS_PER_BLOCK.items()
        for index in range(1, count + 1)
    ]


def _read_keras_h5(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Reads ``{conv1_1: (kernel, bias)}`` from a Keras 3 or legacy Keras 2 VGG16 file."""
    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def add(keras_name: str, kernel, bias, where: str) -> None:
        match = _VGG_LAYER.match(keras_name)
        if match is None:
            return
        name = f"conv{match.group(1)}_{match.group(2)}"
        if name in found:
            raise ValueError(f"{path} holds VGG16's {keras_name} twice (again at {where}).")
        found[name] = (np.asarray(kernel), np.asarray(bias))

    def visit(group_path: str, item) -> None:
        if not isinstance(item, h5py.Group):
            return
        leaf = group_path.rsplit("/", 1)[-1]
        if leaf == "vars" and "0" in item and "1" in item:
            # Keras 3: the layer name is the vars group's attribute or its parent folder.
            parent = group_path.rsplit("/", 2)[-2] if "/" in group_path else ""
            keras_name = item.attrs.get("name", parent)
            add(str(keras_name), item["0"], item["1"], group_path)
        elif "weight_names" in item.attrs and len(item.attrs["weight_names"]) == 2:
            kernel_name, bias_name = (
                n.decode() if isinstance(n, bytes) else n for n in item.attrs["weight_names"]
            )
            add(leaf, item[kernel_name], item[bias_name], group_path)

    try:
        with h5py.File(path, "r") as weights_file:
            weights_file.visititems(visit)
    except OSError as error:
        raise ValueError(f"{path} is not a readable HDF5 weight file ({error}).") from error
    return found


def _read_checkpoint(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    tensors = tf_checkpoint.read_checkpoint(path)
    found = {}
    for name in vgg16_layer_names():
        if f"{name}/weights" in tensors and f"{name}/biases" in tensors:
            found[name] = (tensors[f"{name}/weights"], tensors[f"{name}/biases"])
    return found


def _download_imagenet() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    try:
        vgg = keras.applications.VGG16(weights="imagenet", include_top=False)
    except Exception as error:  # urllib, socket and HTTP errors alike
        raise RuntimeError(
            "Could not download the ImageNet VGG16 weights from keras.applications "
            f"({type(error).__name__}: {error}). This machine may be offline: pass a local "
            "file instead, e.g. encoder_weights=tfsal.paths.shared_weights_dir() / "
            "'hed_bsds500.weights.h5', or a Keras VGG16 .weights.h5 / .h5 file."
        ) from error
    found = {}
    for layer in vgg.layers:
        match = _VGG_LAYER.match(layer.name)
        if match:
            kernel, bias = layer.get_weights()
            found[f"conv{match.group(1)}_{match.group(2)}"] = (kernel, bias)
    return found


def read_vgg16_convolutions(
    source: str | os.PathLike,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Reads the 13 VGG16 convolutions from a file or ``"imagenet"``.

    Args:
        source: ``"imagenet"``, a Keras/HED ``.h5`` file or a TF VGG16 checkpoint.

    Returns:
        ``{"conv1_1": (kernel HWIO, bias), ...}`` with all 13 layers.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if the file is unreadable or lacks a VGG16 convolution.
        RuntimeError: if ``"imagenet"`` cannot be downloaded.
    """
    if str(source) == "imagenet":
        found = _download_imagenet()
    else:
        path = Path(source)
        weight_format = tf_checkpoint.detect_format(path)
        if weight_format == tf_checkpoint.KERAS_WEIGHTS:
            found = _read_keras_h5(path)
        elif weight_format == tf_checkpoint.CHECKPOINT:
            found = _read_checkpoint(path)
        else:
            raise ValueError(
                f"encoder_weights must be 'imagenet', a Keras/HED .h5 file or a TF VGG16 "
                f"checkpoint. Received: {path} (a {weight_format.replace('_', ' ')})."
            )
    missing = [name for name in vgg16_layer_names() if name not in found]
    if missing:
        raise ValueError(
            f"{source} lacks VGG16 convolutions {missing}; expected Keras names "
            "block1_conv1 ... block5_conv3 or checkpoint names conv1_1/weights ...."
        )
    return found


def load_vgg16_encoder(
    model: keras.Model, source: str | os.PathLike, bgr_to_rgb: bool = True
) -> None:
    """Copies pretrained VGG16 convolutions into MSI-Net's encoder.

    Args:
        model: a model built by ``tfsal.models.get("msinet")``.
        source: see ``read_vgg16_convolutions``.
        bgr_to_rgb: reverse the input channels of ``conv1_1`` (see module docstring).

    Raises:
        ValueError: naming the layer whose kernel or bias shape does not match.
    """
    convolutions = read_vgg16_convolutions(source)
    assignments = []
    for name in vgg16_layer_names():
        kernel, bias = convolutions[name]
        if name == "conv1_1" and bgr_to_rgb:
            kernel = kernel[:, :, ::-1, :]
        layer = model.get_layer(name)
        for what, value, variable in (("kernel", kernel, layer.kernel), ("bias", bias, layer.bias)):
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(
                    f"{source}: VGG16 {name} {what} has shape {tuple(value.shape)}, but MSI-Net "
                    f"expects {tuple(variable.shape)}."
                )
            assignments.append((variable, value))
    for variable, value in assignments:
        variable.assign(np.ascontiguousarray(value).astype(variable.dtype))
