"""The model registry: every deep saliency model is built by name.

Adding a model is one folder under ``tfsal/models`` and one decorator::

    @register_model("mymodel")
    def mymodel(*, taps=(), weights=None, encoder_weights=None, **config):
        ...

Every builder accepts ``taps`` (see ``tfsal.models.features.select_taps``),
``weights`` (a checkpoint of the whole model) and ``encoder_weights`` (pretrained
weights for the encoder only), and returns a functional ``keras.Model`` whose
output is a dict holding ``"saliency"`` and the requested taps.

Conventions shared by every model, so data pipelines, training, evaluation and
serving treat them alike:

- input: ``(batch, height, width, 3)`` float32 RGB with values in [0, 255]; each
  model normalises inside itself (ImageNet mean/std, Caffe means, ...);
- ``"saliency"``: ``(batch, height, width, 1)`` at the input resolution, either a
  log-density (``exp`` sums to 1 over the pixels of each image) or a map (any
  monotone saliency score), as registered in ``ModelInfo.output``.
"""

import dataclasses
from collections.abc import Callable

import keras

from tfsal.conventions import LOG_DENSITY, OUTPUT_KINDS

ModelBuilder = Callable[..., keras.Model]


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What the rest of tfsal needs to know about a registered model.

    Attributes:
        name: the registry name.
        builder: builds the model (keyword arguments only).
        output: ``"log_density"`` or ``"map"``: what ``"saliency"`` holds.
        size_multiple: input height and width must be multiples of this.
        default_input_size: (height, width) used when none is given.
    """

    name: str
    builder: ModelBuilder
    output: str
    size_multiple: int
    default_input_size: tuple[int, int]


_MODELS: dict[str, ModelInfo] = {}


def register_model(
    name: str,
    *,
    output: str = LOG_DENSITY,
    size_multiple: int = 32,
    default_input_size: tuple[int, int] = (288, 384),
) -> Callable[[ModelBuilder], ModelBuilder]:
    """Registers a model builder under ``name``.

    Args:
        name: the name users pass to ``tfsal.models.get``.
        output: ``"log_density"`` or ``"map"``: what the model's ``"saliency"`` holds.
        size_multiple: input height and width must be multiples of this.
        default_input_size: (height, width) used when none is given.

    Returns:
        A decorator that registers the builder and returns it unchanged.

    Raises:
        ValueError: if another builder is already registered under ``name`` or an
            argument is invalid.
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
        _MODELS[name] = ModelInfo(name, builder, output, size_multiple, tuple(default_input_size))
        return builder

    return decorator


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
