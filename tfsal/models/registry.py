"""The model registry: every deep saliency model is built by name.

Adding a model is one folder under ``tfsal/models`` and one decorator::

    @register_model("mymodel", output=LOG_DENSITY, size_multiple=16,
                    default_input_size=(240, 320))
    def mymodel(*, input_size, taps=(), weights=None, encoder_weights=None, **config):
        ...

Every builder accepts ``input_size`` (``(height, width)``, or ``None`` for any size
when the model can take one), ``taps`` (see ``tfsal.models.features.select_taps``),
``weights`` (a checkpoint of the whole model) and ``encoder_weights`` (pretrained
weights for the encoder only), and returns a functional ``keras.Model`` whose
output is a dict holding ``"saliency"`` and the requested taps. The registry checks
these arguments once, the same way for every model, before the builder runs:
``input_size`` is two positive integers that are multiples of ``size_multiple``
(``default_input_size`` when not given, unless the model takes any size), and a
weight path exists (a file, a SavedModel folder or a TF checkpoint prefix;
``"imagenet"`` names the model's own pretrained download or copy).

What training needs to know about a model's pretrained encoder is registered with
it too (``ModelInfo``): the layers that form it, the file in the shared weights
folder that ``encoder_weights: auto`` loads, and the layers kept fixed with it.

Conventions shared by every model, so data pipelines, training, evaluation and
serving treat them alike:

- input: ``(batch, height, width, 3)`` float32 RGB with values in [0, 255]; each
  model normalises inside itself (ImageNet mean/std, Caffe means, ...);
- ``"saliency"``: ``(batch, height, width, 1)`` at the input resolution, either a
  log-density (``exp`` sums to 1 over the pixels of each image) or a map (any
  monotone saliency score), as registered in ``ModelInfo.output``.
"""

import dataclasses
import functools
import inspect
import numbers
import os
from collections.abc import Callable, Sequence

import keras

from tfsal.conventions import LOG_DENSITY, OUTPUT_KINDS

ModelBuilder = Callable[..., keras.Model]

# The keyword every builder takes besides its own configuration.
BUILDER_ARGUMENTS = ("input_size", "taps", "weights", "encoder_weights")
# ``weights`` / ``encoder_weights`` value naming the model's own pretrained weights.
PRETRAINED = "imagenet"


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the rest of tfsal needs to know about a registered model.

    Attributes:
        name: the registry name.
        builder: builds the model (keyword arguments only, checked by the registry).
        output: ``"log_density"`` or ``"map"``: what ``"saliency"`` holds.
        size_multiple: input height and width must be multiples of this.
        default_input_size: (height, width) used when none is given.
        any_input_size: whether ``input_size=None`` builds a model taking any
            height and width (multiples of ``size_multiple``); otherwise ``None``
            means ``default_input_size``.
        encoder_layer_prefixes: name prefixes of the layers of the pretrained
            encoder (what a frozen warm-up freezes); empty without one, and then
            ``encoder_weights`` is refused.
        pretrained_encoder_file: the file in the shared weights folder
            (``tfsal.paths.shared_weights_dir``) holding the encoder's pretrained
            weights, or None.
        fixed_with_frozen_encoder: names of further layers that stay fixed while
            the encoder is frozen for a whole run.
        default_taps: the taps an explainable model rebuilds by default
            (``tfsal.explain.derive``): taps that cut every path from the image to
            the saliency, so that the ``decoder`` readout can reuse the rest.
    """

    name: str
    builder: ModelBuilder
    output: str
    size_multiple: int
    default_input_size: tuple[int, int]
    any_input_size: bool = True
    encoder_layer_prefixes: tuple[str, ...] = ()
    pretrained_encoder_file: str | None = None
    fixed_with_frozen_encoder: tuple[str, ...] = ()
    default_taps: tuple[str, ...] = ()


_MODELS: dict[str, ModelInfo] = {}


def register_model(
    name: str,
    *,
    output: str = LOG_DENSITY,
    size_multiple: int = 32,
    default_input_size: tuple[int, int] = (288, 384),
    any_input_size: bool = True,
    encoder_layer_prefixes: Sequence[str] = (),
    pretrained_encoder_file: str | None = None,
    fixed_with_frozen_encoder: Sequence[str] = (),
    default_taps: tuple[str, ...] = (),
) -> Callable[[ModelBuilder], ModelBuilder]:
    """Registers a model builder under ``name``.

    Args:
        name: the name users pass to ``tfsal.models.get``.
        output: ``"log_density"`` or ``"map"``: what the model's ``"saliency"`` holds.
        size_multiple: input height and width must be multiples of this.
        default_input_size: (height, width) used when none is given.
        any_input_size: whether the model can be built for any input size.
        encoder_layer_prefixes: name prefixes of the pretrained encoder's layers.
        pretrained_encoder_file: the encoder's weights in the shared weights folder.
        fixed_with_frozen_encoder: layers fixed while the encoder is frozen throughout.
        default_taps: taps the explainable model rebuilds by default (see
            ``ModelInfo``).

    Returns:
        A decorator that registers the builder and returns it wrapped, so that
        direct calls have their arguments checked as ``get`` does.

    Raises:
        ValueError: if another builder is already registered under ``name`` or an
            argument is invalid.
        TypeError: if the builder lacks one of ``BUILDER_ARGUMENTS``.
    """
    if output not in OUTPUT_KINDS:
        raise ValueError(f"output must be one of {OUTPUT_KINDS}. Received: output={output!r}")
    if size_multiple < 1:
        raise ValueError(f"size_multiple must be >= 1. Received: size_multiple={size_multiple}")

    def decorator(builder: ModelBuilder) -> ModelBuilder:
        if name in _MODELS:
            existing = _MODELS[name].builder
            raise ValueError(
                f"A model named '{name}' is already registered "
                f"(by {existing.__module__}.{existing.__qualname__})."
            )
        parameters = inspect.signature(builder).parameters
        lacking = [argument for argument in BUILDER_ARGUMENTS if argument not in parameters]
        if lacking:
            raise TypeError(
                f"The builder of '{name}' must accept {', '.join(BUILDER_ARGUMENTS)}. "
                f"Received: a builder without {', '.join(lacking)}"
            )

        @functools.wraps(builder)
        def build(**kwargs) -> keras.Model:
            return builder(**_checked_arguments(_MODELS[name], kwargs))

        _MODELS[name] = ModelInfo(
            name,
            build,
            output,
            size_multiple,
            _size_pair("default_input_size", default_input_size),
            any_input_size,
            tuple(encoder_layer_prefixes),
            pretrained_encoder_file,
            tuple(fixed_with_frozen_encoder),
            tuple(default_taps),
        )
        return build

    return decorator


def _size_pair(argument: str, size) -> tuple[int, int]:
    if (
        isinstance(size, str)
        or not isinstance(size, Sequence)
        or len(size) != 2
        or not all(
            isinstance(side, numbers.Integral) and not isinstance(side, bool) and side > 0
            for side in size
        )
    ):
        raise ValueError(
            f"{argument} must be (height, width) with positive integer sides. "
            f"Received: {argument}={size!r}"
        )
    return int(size[0]), int(size[1])


def _check_weight_path(argument: str, path) -> None:
    """Raises FileNotFoundError unless ``path`` can hold weights (before a slow build)."""
    if path is None or str(path) == PRETRAINED:
        return
    path = os.fspath(path)
    # A file, a SavedModel folder, or a TF checkpoint prefix (``model.ckpt`` of
    # ``model.ckpt.index`` and its data shards).
    if not (os.path.exists(path) or os.path.isfile(path + ".index")):
        raise FileNotFoundError(f"{argument} file not found. Received: {argument}={path!r}")


def _checked_arguments(info: ModelInfo, kwargs: dict) -> dict:
    """Checks the arguments every builder takes; fills ``input_size``."""
    input_size = kwargs.get("input_size")
    if input_size is None and not info.any_input_size:
        input_size = info.default_input_size
    if input_size is not None:
        input_size = _size_pair("input_size", input_size)
        check_input_size(info.name, *input_size)
    encoder_weights = kwargs.get("encoder_weights")
    if encoder_weights is not None and not info.encoder_layer_prefixes:
        raise ValueError(
            f"Model '{info.name}' has no pretrained encoder; train it from scratch or pass "
            f"a whole-model checkpoint as weights=. Received: encoder_weights={encoder_weights!r}"
        )
    for argument in ("weights", "encoder_weights"):
        _check_weight_path(argument, kwargs.get(argument))
    return {**kwargs, "input_size": input_size}


def unregister_model(name: str) -> ModelInfo:
    """Removes ``name`` from the registry, e.g. a model registered only for a test.

    Returns:
        The registration record that was removed.

    Raises:
        ValueError: if no model is registered under ``name``.
    """
    info = model_info(name)
    del _MODELS[name]
    return info


def list_models() -> list[str]:
    """Returns the names of all registered models, sorted."""
    return sorted(_MODELS)


def model_info(name: str) -> ModelInfo:
    """Returns the registration record of ``name``.

    Raises:
        ValueError: if no model is registered under ``name``.
    """
    try:
        return _MODELS[name]
    except KeyError:
        raise ValueError(
            f"Unknown model '{name}'. Registered models: {', '.join(list_models())}."
        ) from None


def get_builder(name: str) -> ModelBuilder:
    """Returns the builder registered under ``name``."""
    return model_info(name).builder


def check_input_size(name: str, height: int, width: int) -> None:
    """Raises a clear error when ``name`` cannot take an input of this size.

    Raises:
        ValueError: if height or width is not a positive multiple of the model's
            ``size_multiple``.
    """
    multiple = model_info(name).size_multiple
    if height <= 0 or width <= 0 or height % multiple or width % multiple:
        raise ValueError(
            f"Model '{name}' needs input height and width that are positive multiples "
            f"of {multiple}. Received: {height}x{width}. Choose e.g. "
            f"{max(multiple, round(height / multiple) * multiple)}x"
            f"{max(multiple, round(width / multiple) * multiple)}."
        )


def get(name: str, **kwargs) -> keras.Model:
    """Builds the registered model ``name``.

    Args:
        name: a name from ``list_models()``.
        **kwargs: passed to the builder: ``taps``, ``weights``, ``encoder_weights``
            and the model's own configuration.

    Returns:
        The functional model; its output is a dict with ``"saliency"`` and the taps.
    """
    return get_builder(name)(**kwargs)
