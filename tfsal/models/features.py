"""Named intermediate outputs ("taps") of the deep models.

A model's taps are the activation maps the explainable model rebuilds from
log-Gabor responses. Each builder lists them in input-to-output order as
``FeatureInfo`` records and uses ``build_tapped_model`` to expose the chosen ones
next to ``"saliency"`` in a dict output (after timm's ``feature_info`` and
keras-hub's pyramid outputs).
"""

import dataclasses
from collections.abc import Mapping, Sequence

import keras

from tfsal.conventions import SALIENCY


@dataclasses.dataclass(frozen=True)
class FeatureInfo:
    """One named intermediate output of a model.

    Attributes:
        name: the key of the tap in the model's output dict.
        channels: number of channels of the activation map.
        stride: input pixels per tap pixel along each axis (8 means 1/8 resolution).
    """

    name: str
    channels: int
    stride: int


TapSelection = None | int | str | Sequence[str]


def select_taps(taps: TapSelection, feature_info: Sequence[FeatureInfo]) -> list[str]:
    """Resolves a tap selection against a model's taps.

    Args:
        taps: ``None`` for all taps, an int n for the last n taps, a name, or a
            sequence of names (an empty sequence selects none).
        feature_info: the model's taps in input-to-output order.

    Returns:
        The selected tap names, in the model's order.

    Raises:
        ValueError: for an unknown name or an int out of range.
    """
    names = [info.name for info in feature_info]
    if taps is None:
        return names
    if isinstance(taps, bool) or (not isinstance(taps, (int, str, Sequence))):
        raise ValueError(
            f"taps must be None, an int, a name or a list of names. Received: taps={taps!r}"
        )
    if isinstance(taps, int):
        if not 0 <= taps <= len(names):
            raise ValueError(
                f"taps must be between 0 and {len(names)} (the number of taps). "
                f"Received: taps={taps}"
            )
        return names[len(names) - taps :]
    requested = [taps] if isinstance(taps, str) else list(taps)
    unknown = [name for name in requested if name not in names]
    if unknown:
        raise ValueError(f"Unknown taps {unknown}. This model's taps: {', '.join(names)}.")
    return [name for name in names if name in requested]


def build_tapped_model(
    inputs: keras.KerasTensor | Mapping[str, keras.KerasTensor],
    saliency: keras.KerasTensor,
    tap_tensors: Mapping[str, keras.KerasTensor],
    feature_info: Sequence[FeatureInfo],
    taps: TapSelection,
    name: str,
) -> keras.Model:
    """Builds a functional model whose output dict holds saliency and chosen taps.

    Args:
        inputs: the model's input tensor(s).
        saliency: the saliency output tensor.
        tap_tensors: every tap's tensor by name.
        feature_info: the taps in input-to-output order.
        taps: which taps to expose (see ``select_taps``).
        name: the model's name.

    Returns:
        The model, with a ``feature_info`` attribute listing all of its taps.
    """
    missing = [info.name for info in feature_info if info.name not in tap_tensors]
    if missing:
        raise ValueError(f"feature_info names taps that were not built: {missing}")
    outputs = {SALIENCY: saliency}
    for tap in select_taps(taps, feature_info):
        outputs[tap] = tap_tensors[tap]
    model = keras.Model(inputs, outputs, name=name)
    model.feature_info = list(feature_info)
    return model
