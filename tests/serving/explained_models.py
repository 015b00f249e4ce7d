"""Tiny saliency models for the serving tests: deep (log-density), explainable, exported.

``deep_model`` is a two-convolution log-density model with a dict output;
``explainable_model`` adds ``contributions`` whose channels (two feature groups and a
constant prior) sum to the saliency logits, as the derivation's linear readout does.
``export`` writes either as a SavedModel with tfsal's metadata, as the exporter does.
"""

import json
from pathlib import Path

import keras
import numpy as np

from serving import constants
from tfsal.layers import SpatialLogSoftmax

SIZE = (24, 32)
GROUPS = ("Y/scale0", "Y/scale1", "prior")


def deep_model(size=SIZE, seed=0) -> keras.Model:
    """(batch, h, w, 3) in [0, 255] -> {"saliency": log-density, "features": ...}."""
    keras.utils.set_random_seed(seed)
    image = keras.Input((*size, 3))
    scaled = keras.layers.Rescaling(1 / 255.0)(image)
    features = keras.layers.Conv2D(4, 3, padding="same", activation="tanh", name="features")(scaled)
    logits = keras.layers.Conv2D(1, 3, padding="same", name="readout")(features)
    saliency = SpatialLogSoftmax(name="log_density")(logits)
    return keras.Model(image, {"saliency": saliency, "features": features}, name="tiny_deep")


def explainable_model(size=SIZE, seed=0) -> keras.Model:
    """A model whose ``contributions`` (two groups + prior) sum to its logits."""
    keras.utils.set_random_seed(seed)
    image = keras.Input((*size, 3))
    scaled = keras.layers.Rescaling(1 / 255.0)(image)
    groups = keras.layers.Conv2D(2, 3, padding="same", name="group_maps")(scaled)
    prior = keras.layers.Conv2D(
        1, 1, use_bias=True, kernel_initializer="zeros", bias_initializer="ones", name="prior"
    )(keras.ops.zeros_like(scaled[..., :1]))
    contributions = keras.layers.Concatenate(name="contributions")([groups, prior])
    logits = keras.ops.sum(contributions, axis=-1, keepdims=True)
    saliency = SpatialLogSoftmax(name="log_density")(logits)
    return keras.Model(
        image, {"saliency": saliency, "contributions": contributions}, name="tiny_explainable"
    )


def export(model: keras.Model, folder: Path, metadata_extra=None) -> Path:
    """Exports ``model`` with tfsal's metadata; returns the SavedModel folder."""
    model.export(str(folder), format="tf_saved_model", verbose=False)
    metadata = {
        "model": model.name,
        "output": "log_density",
        "input_size": list(model.input.shape[1:3]),
        "resize": "pad",
        **(metadata_extra or {}),
    }
    path = folder / constants.METADATA_DIR / constants.METADATA_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metadata), encoding="utf-8")
    return folder


def random_image(height, width, seed=0) -> np.ndarray:
    """A smooth random RGB uint8 image."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((max(2, height // 4), max(2, width // 4), 3)) * 255
    import cv2

    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.uint8)
