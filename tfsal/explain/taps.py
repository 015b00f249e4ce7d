"""The taps of a parent model: which activation maps an explainable model rebuilds.

A tap is named either by a key of the parent's dict output (the registered models
expose their taps that way, ``tfsal.models.get(name, taps=[...])``) or by the name of
any layer of a functional model, which makes the derivation work for any Keras
saliency model with named layers. A tap's stride is read from its output's size
relative to the input's.
"""

import dataclasses
from collections.abc import Sequence

import keras

from tfsal.conventions import OUTPUT_KINDS, SALIENCY
from tfsal.models import registry


@dataclasses.dataclass(frozen=True)
class Tap:
    """One tap of a parent model, measured on an input of known size.

    Attributes:
        name: the output key or layer name.
        channels: channels of the activation map.
        stride: input pixels per tap pixel along each axis.
    """

    name: str
    channels: int
    stride: int


def default_taps(parent: keras.Model) -> list[str]:
    """The registered default taps of a registered model (``ModelInfo.default_taps``).

    Raises:
        ValueError: if ``parent`` is not a registered model; pass ``taps=`` then.
    """
    info = _registration(parent)
    if info is None or not info.default_taps:
        raise ValueError(
            f"Model {parent.name!r} is not a registered model with default taps "
            f"({', '.join(registry.list_models())}); pass taps=[layer names] to choose "
            "the layers to reconstruct."
        )
    return list(info.default_taps)


def output_kind(parent: keras.Model, kind: str | None = None) -> str:
    """What the parent's saliency holds: ``kind`` if given, else its registration's.

    Raises:
        ValueError: for an unknown kind, or an unregistered parent without ``kind``.
    """
    if kind is None:
        info = _registration(parent)
        if info is None:
            raise ValueError(
                f"The output kind of model {parent.name!r} is unknown (it is not a "
                f"registered model); pass output_kind= one of {OUTPUT_KINDS}."
            )
        kind = info.output
    if kind not in OUTPUT_KINDS:
        raise ValueError(f"output_kind must be one of {OUTPUT_KINDS}. Received: {kind!r}")
    return kind


def _registration(parent):
    try:
        return registry.model_info(parent.name)
    except ValueError:
        return None


def saliency_tensor(parent: keras.Model):
    """The parent's saliency output (``"saliency"`` of a dict output, or its only one)."""
    outputs = parent.output
    if isinstance(outputs, dict):
        if SALIENCY not in outputs:
            raise ValueError(
                f"Model {parent.name!r} has a dict output without {SALIENCY!r} "
                f"(keys: {sorted(outputs)}); name its saliency output {SALIENCY!r}."
            )
        return outputs[SALIENCY]
    if isinstance(outputs, (list, tuple)):
        raise ValueError(
            f"Model {parent.name!r} has {len(outputs)} outputs; give it one saliency output "
            f"or a dict output with {SALIENCY!r}."
        )
    return outputs


def tap_tensors(parent: keras.Model, taps: Sequence[str]) -> dict:
    """The symbolic tensor of every tap, by name.

    Raises:
        ValueError: for a name that is neither an output key nor a layer of the parent,
            or a layer used more than once (its output is ambiguous).
    """
    outputs = parent.output if isinstance(parent.output, dict) else {}
    layers = {layer.name: layer for layer in parent.layers}
    found = {}
    for tap in taps:
        if tap == SALIENCY:
            raise ValueError(f"{SALIENCY!r} is the parent's output, not a tap; choose layers.")
        if tap in outputs:
            found[tap] = outputs[tap]
        elif tap in layers:
            layer = layers[tap]
            if len(layer._inbound_nodes) != 1:
                raise ValueError(
                    f"Layer {tap!r} of model {parent.name!r} is called "
                    f"{len(layer._inbound_nodes)} times, so its output is ambiguous; tap a "
                    "layer that is called once."
                )
            found[tap] = layer.output
        else:
            taps_out = [key for key in outputs if key != SALIENCY]
            raise ValueError(
                f"Model {parent.name!r} has no tap {tap!r}: it is neither one of its outputs "
                f"({', '.join(taps_out) or 'none besides saliency'}) nor one of its layers "
                f"(e.g. {', '.join(list(layers)[-5:])}; model.summary() lists them all). "
                "For a registered model, build it with tfsal.models.get(name, taps=[...]) "
                "to expose its named taps."
            )
        if len(found[tap].shape) != 4:
            raise ValueError(
                f"Tap {tap!r} has shape {found[tap].shape}; taps must be (batch, height, "
                "width, channels) activation maps."
            )
    return found


def tapped_model(parent: keras.Model, taps: Sequence[str]) -> keras.Model:
    """A model sharing the parent's layers that outputs its saliency and the taps."""
    if len(parent.inputs) != 1:
        raise ValueError(
            f"Model {parent.name!r} has {len(parent.inputs)} inputs; the explainable model "
            "needs a parent with one image input."
        )
    outputs = {SALIENCY: saliency_tensor(parent), **tap_tensors(parent, taps)}
    return keras.Model(parent.inputs[0], outputs, name=f"{parent.name}_tapped")


def measure_taps(activations: dict, image_shape: Sequence[int], taps: Sequence[str]) -> list[Tap]:
    """Reads every tap's stride and channels from activations of one batch.

    Args:
        activations: arrays by tap name, (B, h, w, C).
        image_shape: (B, H, W, 3) of the images they came from.
        taps: the tap names, in order.

    Raises:
        ValueError: for a tap that is not a whole fraction of the image (finer than
            the image, or a stride that differs between the axes).
    """
    height, width = int(image_shape[1]), int(image_shape[2])
    measured = []
    for tap in taps:
        tap_height, tap_width, channels = (int(n) for n in activations[tap].shape[1:])
        stride = height // tap_height if tap_height else 0
        if not (stride >= 1 and tap_height * stride == height and tap_width * stride == width):
            raise ValueError(
                f"Tap {tap!r} is {tap_height}x{tap_width} for a {height}x{width} image: the "
                "explainable model rebuilds taps at 1/s of the image for one whole stride "
                "s >= 1 on both axes (a tap finer than the image, or cropped, cannot be "
                "rebuilt from log-Gabor features pooled from it). Choose another tap, or an "
                "image size that the model's strides divide."
            )
        measured.append(Tap(tap, channels, stride))
    return measured


def parent_decoder(parent: keras.Model, taps: Sequence[str]) -> keras.Model:
    """The part of the parent from the taps to its saliency, as a model of its own.

    The model shares the parent's layers (and weights) and takes the taps as a list
    in ``taps`` order; the ``decoder`` readout feeds it the reconstructions.

    Raises:
        ValueError: if the saliency depends on the image through some path that
            bypasses the taps (then the taps do not separate encoder and decoder).
    """
    tensors = tap_tensors(parent, taps)
    try:
        return keras.Model(
            [tensors[tap] for tap in taps], saliency_tensor(parent), name=f"{parent.name}_decoder"
        )
    except ValueError:
        raise ValueError(
            f"The decoder readout needs taps that cut every path from the image to the "
            f"saliency of model {parent.name!r}; with taps {list(taps)} some layers still "
            "read the image (or a layer before the taps) directly. Add the missing "
            "encoder outputs to taps (the registered default taps cut the graph), or use "
            "readout='linear'."
        ) from None
