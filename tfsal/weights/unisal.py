"""Released UNISAL checkpoints (PyTorch) into the Keras image model.

UNISAL's ``weights_best.pth`` (trained jointly on DHF1K, Hollywood-2, UCF-Sports
and SALICON) and ``weights_ft_mit1003.pth`` (fine-tuned on MIT1003 through the
SALICON domain) are ``torch.save(model.state_dict())`` files. Besides the image
path they hold, all ignored here:

- domain-specific copies for the video sources: the BatchNorms ``bn_DHF1K``,
  ``bn_Hollywood``, ``bn_UCFSports`` inside every decoder BatchNorm, and
  ``coarse_gaussians_<src>``, ``adaptation_<src>``, ``smoothing_<src>`` for
  ``dhf1k``, ``hollywood`` and ``ucfsports``;
- the video recurrence: the ConvGRU ``rnn.*`` (with its dropout mask buffers) and
  the ``post_rnn.*`` 1x1 convolution, which UNISAL bypasses for still images;
- BatchNorm ``num_batches_tracked`` counters.

The image model uses the SALICON domain, as UNISAL does for SALICON, MIT1003 and
MIT300. Every other tensor is mapped exactly once.
"""

import os
import re

import keras
import numpy as np

from tfsal.weights import mobilenet_v2
from tfsal.weights.keras_weights import is_keras_weights_file, load_keras_weights
from tfsal.weights.torch_mapping import ModuleMapping, load_state_dict_into, state_dict_from
from tfsal.weights.torch_reader import CheckpointError, read_state_dict

SOURCES = ("DHF1K", "Hollywood", "UCFSports", "SALICON")
IMAGE_SOURCE = "SALICON"

_IGNORED_KEYS = re.compile(
    r"^(rnn|post_rnn)\."
    r"|\.bn_(?!" + IMAGE_SOURCE + r"\.)[A-Za-z0-9]+\."
    r"|^(coarse_gaussians|adaptation|smoothing)_(?!" + IMAGE_SOURCE.lower() + r"\b)[a-z0-9]+"
)


def unisal_mappings(source: str = IMAGE_SOURCE) -> list[ModuleMapping]:
    """Mappings of UNISAL's image path for one domain of the released checkpoint.

    Args:
        source: the domain whose BatchNorms, priors, adaptation and smoothing
            are loaded (UNISAL's capitalisation, e.g. ``"SALICON"``).

    Returns:
        The module mappings of the whole image model.
    """
    domain_bn = f".bn_{source}"
    suffix = source.lower()
    mappings = mobilenet_v2.encoder_mappings("tonylins", prefix="cnn.")
    mappings += mobilenet_v2.inverted_residual_mappings(
        "post_cnn", "post_cnn.inv_res", False, "tonylins"
    )
    for skip in ("skip_2x", "skip_4x"):
        mappings += [
            ModuleMapping(f"{skip}_expansion", "conv", f"{skip}.expansion.0"),
            ModuleMapping(f"{skip}_expansion_bn", "batch_norm", f"{skip}.expansion.1{domain_bn}"),
            ModuleMapping(f"{skip}_reduction", "conv_bias", f"{skip}.reduction.0"),
            ModuleMapping(f"{skip}_reduction_bn", "batch_norm", f"{skip}.reduction.1{domain_bn}"),
        ]
    for block in ("upsampling_2", "post_upsampling_2"):
        mappings += mobilenet_v2.inverted_residual_mappings(
            block, f"{block}.inv_res", True, "tonylins", batch_norm_child=domain_bn
        )
    mappings += [
        ModuleMapping("gaussian_prior", "parameter", f"coarse_gaussians_{suffix}"),
        ModuleMapping("adaptation", "conv_bias", f"adaptation_{suffix}.0"),
        ModuleMapping("smoothing", "conv", f"smoothing_{suffix}"),
    ]
    return mappings


def is_ignored_key(key: str) -> bool:
    """Whether ``key`` belongs to another domain or the video path (see module doc)."""
    return bool(_IGNORED_KEYS.search(key))


def load_unisal_weights(model: keras.Model, path: str | os.PathLike) -> None:
    """Loads a released UNISAL checkpoint (SALICON domain) or a Keras weights file.

    Args:
        model: a model built by ``tfsal.models.get("unisal")``.
        path: ``weights_best.pth`` / ``weights_ft_mit1003.pth`` (or any UNISAL
            state dict), or a Keras weight file saved from this model (detected by
            its content, see ``keras_weights``).

    Raises:
        CheckpointError: if a tensor is missing, unexpected or mis-shaped.
    """
    path = os.fspath(path)
    if is_keras_weights_file(path):
        load_keras_weights(model, path)
        return
    state_dict = read_state_dict(path)
    state_dict = {re.sub(r"^module\.", "", key): value for key, value in state_dict.items()}
    if "cnn.features.0.0.weight" not in state_dict:
        raise CheckpointError(
            f"{path} is not a UNISAL checkpoint (no 'cnn.features.0.0.weight'). For ImageNet "
            "MobileNetV2 weights use encoder_weights=... instead of weights=..."
        )
    load_state_dict_into(model, state_dict, unisal_mappings(), source=path, ignore=is_ignored_key)


def unisal_state_dict(model: keras.Model, source: str = IMAGE_SOURCE) -> dict[str, np.ndarray]:
    """Exports the image model's weights under UNISAL's PyTorch key names.

    The result loads into UNISAL with ``sources=(source,)`` (``strict=False``
    leaves the absent BatchNorm counters at zero).

    Args:
        model: a model built by ``tfsal.models.get("unisal")``.
        source: the domain name to write.

    Returns:
        PyTorch key -> numpy array.
    """
    return state_dict_from(model, unisal_mappings(source))
