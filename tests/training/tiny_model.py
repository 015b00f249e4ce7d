"""A tiny registered model and data set options for fast tests of the main job.

``tiny_test``: an input colour transform, one strided "encoder" convolution (so the
backbone warm-up has something to freeze), a 1x1 readout and a log-softmax over the
pixels. It trains in well under a second per epoch on 32x32 pop-out images.

Importing this module registers nothing, so the tests parametrised over
``tfsal.models.list_models()`` see the package's models only, whatever pytest
collected first. ``tests/training/conftest.py`` holds it registered while the tests
of ``tests/training`` run (``registered()``); scripts that run in a process of
their own call ``register()``.
"""

import contextlib
from collections.abc import Iterator

import keras

from tfsal.layers import SpatialLogSoftmax
from tfsal.models import build_tapped_model, list_models, register_model, unregister_model
from tfsal.models.features import FeatureInfo
from tfsal.weights import keras_weights

NAME = "tiny_test"

# Fast settings for `python -m training.fit` on the tiny model.
FAST_ARGS = [
    "--model",
    NAME,
    "--image-size",
    "32",
    "32",
    "--batch-size",
    "4",
    "--set",
    "max_images=24",
    "--set",
    "report_samples=2",
    # The pop-out data's recipe holds out a tenth; these runs keep a fifth, 5 of 24
    # images, for validation scores that mean something.
    "--set",
    "val_fraction=0.2",
]


def _build(*, taps=(), weights=None, encoder_weights=None, input_size=None):
    inputs = keras.Input((None, None, 3))
    scaled = keras.layers.Rescaling(1 / 255.0, name="scale")(inputs)
    features = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="encoder_conv")(
        scaled
    )
    logits = keras.layers.Conv2D(1, 1, name="readout")(features)
    saliency = SpatialLogSoftmax(name="log_density")(logits)
    feature_info = [FeatureInfo("encoder", 4, 1)]
    model = build_tapped_model(
        inputs, saliency, {"encoder": features}, feature_info, taps, name=NAME
    )
    if weights:
        keras_weights.load_keras_weights(model, weights)
    return model


def register() -> None:
    """Registers ``tiny_test`` for the rest of the process."""
    register_model(
        NAME,
        output="log_density",
        size_multiple=4,
        default_input_size=(32, 32),
        encoder_layer_prefixes=("encoder",),
        default_taps=("encoder",),
    )(_build)


@contextlib.contextmanager
def registered() -> Iterator[None]:
    """Holds ``tiny_test`` registered inside the block, then removes it again."""
    if NAME in list_models():  # a script of this process registered it for good
        yield
        return
    register()
    try:
        yield
    finally:
        unregister_model(NAME)
