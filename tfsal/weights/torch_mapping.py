"""Moves tensors between PyTorch state dicts and Keras layers by an explicit table.

A mapping is a list of ``ModuleMapping`` records, one per Keras layer: which
PyTorch module (key prefix) feeds it and how its tensors are laid out. Loading
checks the whole state dict before touching the model: every tensor must be used
exactly once (or be declared ignored), none may be missing, and every shape must
fit; any violation is one error that names the offending keys.
"""

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence

import keras
import numpy as np

from tfsal.weights.torch_reader import CheckpointError

# PyTorch parameter names of each kind of layer, in Keras' weight order.
_TORCH_PARAMETERS = {
    "conv": ("weight",),
    "conv_bias": ("weight", "bias"),
    "depthwise": ("weight",),
    "batch_norm": ("weight", "bias", "running_mean", "running_var"),
    "dense": ("weight", "bias"),
    "parameter": ("",),
}

# BatchNorm's update counter has no Keras counterpart and is always dropped.
_ALWAYS_IGNORED = re.compile(r"(^|\.)num_batches_tracked$")


@dataclasses.dataclass(frozen=True)
class ModuleMapping:
    """One Keras layer and the PyTorch module its weights come from.

    Attributes:
        layer: the Keras layer name.
        kind: ``"conv"``, ``"conv_bias"``, ``"depthwise"``, ``"batch_norm"``,
            ``"dense"`` or ``"parameter"`` (a bare ``nn.Parameter`` stored as is).
        prefix: the PyTorch key prefix (for ``"parameter"``: the full key).
    """

    layer: str
    kind: str
    prefix: str

    def torch_keys(self) -> list[str]:
        """The state-dict keys of this module, in Keras' weight order."""
        if self.kind == "parameter":
            return [self.prefix]
        return [f"{self.prefix}.{name}" for name in _TORCH_PARAMETERS[self.kind]]


def _to_keras(kind, index, tensor):
    if index == 0 and kind in ("conv", "conv_bias") and tensor.ndim == 4:
        return tensor.transpose(2, 3, 1, 0)  # (out, in, kh, kw) -> (kh, kw, in, out)
    if kind == "depthwise" and tensor.ndim == 4:
        return tensor.transpose(2, 3, 0, 1)  # (channels, 1, kh, kw) -> (kh, kw, channels, 1)
    if index == 0 and kind == "dense" and tensor.ndim == 2:
        return tensor.T
    return tensor


def _to_torch(kind, index, array):
    if index == 0 and kind in ("conv", "conv_bias"):
        return array.transpose(3, 2, 0, 1)
    if kind == "depthwise":
        return array.transpose(2, 3, 0, 1)
    if index == 0 and kind == "dense":
        return array.T
    return array


def load_state_dict_into(
    model: keras.Model,
    state_dict: Mapping[str, np.ndarray],
    mappings: Sequence[ModuleMapping],
    source: str,
    ignore: Callable[[str], bool] = lambda key: False,
) -> None:
    """Assigns a PyTorch state dict to ``model``'s layers.

    Args:
        model: the Keras model (built).
        state_dict: PyTorch key -> numpy array.
        mappings: which tensors go to which layer.
        source: the file name, for error messages.
        ignore: returns True for keys that are knowingly not used.

    Raises:
        CheckpointError: naming the missing, unused or mis-shaped keys; nothing is
            assigned in that case.
    """
    layers = {layer.name: layer for layer in model.layers}
    absent_layers = [mapping.layer for mapping in mappings if mapping.layer not in layers]
    if absent_layers:
        raise CheckpointError(
            f"Model '{model.name}' lacks the layers {absent_layers[:5]} that {source} fills; "
            "it was not built by the matching builder."
        )
    expected_keys = [key for mapping in mappings for key in mapping.torch_keys()]
    missing = [key for key in expected_keys if key not in state_dict]
    used = set(expected_keys)
    unused = [
        key
        for key in state_dict
        if key not in used and not _ALWAYS_IGNORED.search(key) and not ignore(key)
    ]
    if missing or unused:
        problems = []
        if missing:
            problems.append(f"missing tensors {_preview(missing)}")
        if unused:
            problems.append(f"unexpected tensors {_preview(unused)}")
        raise CheckpointError(
            f"{source} does not match model '{model.name}': {'; '.join(problems)}."
        )

    assignments = []
    for mapping in mappings:
        layer = layers[mapping.layer]
        if len(layer.weights) != len(mapping.torch_keys()):
            raise CheckpointError(
                f"Layer '{layer.name}' has {len(layer.weights)} weights, but {source} maps "
                f"{len(mapping.torch_keys())} tensors to it ({mapping.torch_keys()})."
            )
        for index, (key, variable) in enumerate(
            zip(mapping.torch_keys(), layer.weights, strict=True)
        ):
            value = _to_keras(mapping.kind, index, np.asarray(state_dict[key]))
            if tuple(value.shape) != tuple(variable.shape):
                raise CheckpointError(
                    f"{source}: tensor '{key}' has shape {tuple(state_dict[key].shape)}, which "
                    f"does not fit layer '{layer.name}' (Keras shape {tuple(variable.shape)})."
                )
            assignments.append((variable, value))
    for variable, value in assignments:
        variable.assign(value.astype(variable.dtype))


def state_dict_from(model: keras.Model, mappings: Sequence[ModuleMapping]) -> dict[str, np.ndarray]:
    """The inverse of ``load_state_dict_into``: PyTorch key -> numpy array from a model."""
    layers = {layer.name: layer for layer in model.layers}
    state_dict = {}
    for mapping in mappings:
        layer = layers[mapping.layer]
        for index, (key, variable) in enumerate(
            zip(mapping.torch_keys(), layer.weights, strict=True)
        ):
            value = keras.ops.convert_to_numpy(variable)
            state_dict[key] = np.ascontiguousarray(_to_torch(mapping.kind, index, value))
    return state_dict


def _preview(keys, limit=8):
    shown = ", ".join(f"'{key}'" for key in keys[:limit])
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return f"[{shown}{more}]"
