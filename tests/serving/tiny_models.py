"""Tiny functional models of tfsal's conventions for the serving tests.

``deep_model`` is a log-density model; ``explainable_model`` stands in for the
derivation's explainable model by its outputs only: ``saliency`` (log-density),
``contributions`` (two groups summing to the logits) and ``reconstruction_<tap>``.
``picture``, ``png`` and ``jpeg`` make smooth test images.
"""

import keras
import numpy as np
import tensorflow as tf

from tfsal.conventions import CONTRIBUTIONS, SALIENCY, reconstruction_key
from tfsal.layers.spatial_log_softmax import SpatialLogSoftmax

INPUT_SIZE = (32, 32)
TAP = "encoder"


def _features(inputs):
    scaled = keras.layers.Rescaling(1 / 255.0)(inputs)
    return keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="features")(scaled)


def deep_model(output_kind: str = "log_density") -> keras.Model:
    inputs = keras.Input((None, None, 3), name="image")
    logits = keras.layers.Conv2D(1, 3, padding="same", name="readout")(_features(inputs))
    if output_kind == "log_density":
        saliency = SpatialLogSoftmax(name="log_density")(logits)
    else:
        saliency = keras.layers.Activation("sigmoid", name="map")(logits)
    return keras.Model(inputs, {SALIENCY: saliency}, name="tiny_deep")


def explainable_model() -> keras.Model:
    inputs = keras.Input((None, None, 3), name="image")
    features = _features(inputs)
    reconstruction = keras.layers.AveragePooling2D(2, name="reconstruction")(features)
    contributions = keras.layers.Conv2D(2, 3, padding="same", name="contributions")(features)
    logits = keras.layers.Lambda(lambda x: keras.ops.sum(x, axis=-1, keepdims=True), name="logits")(
        contributions
    )
    saliency = SpatialLogSoftmax(name="log_density")(logits)
    outputs = {
        SALIENCY: saliency,
        CONTRIBUTIONS: contributions,
        reconstruction_key(TAP): reconstruction,
    }
    return keras.Model(inputs, outputs, name="tiny_explainable")


def picture(height, width, seed=0):
    # Smooth content, so resampling differences stay small.
    rows, cols = np.mgrid[0:height, 0:width]
    rng = np.random.default_rng(seed)
    phases = rng.uniform(0, 2 * np.pi, 3)
    channels = [
        127 + 100 * np.sin(rows / (5 + 3 * c) + cols / (7 + 2 * c) + phases[c]) for c in range(3)
    ]
    return np.stack(channels, axis=-1).astype(np.uint8)


def png(image):
    return tf.io.encode_png(image).numpy()


def jpeg(image):
    return tf.io.encode_jpeg(image, quality=95).numpy()


def decoder_readout_model() -> keras.Model:
    """An explainable model without contributions (like a ``decoder`` readout)."""
    inputs = keras.Input((None, None, 3), name="image")
    reconstruction = keras.layers.AveragePooling2D(2)(_features(inputs))
    logits = keras.layers.UpSampling2D(2)(keras.layers.Conv2D(1, 1)(reconstruction))
    saliency = SpatialLogSoftmax(name="log_density")(logits)
    return keras.Model(inputs, {SALIENCY: saliency, reconstruction_key(TAP): reconstruction})
