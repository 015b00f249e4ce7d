"""Small functional saliency models, not in the registry, to derive explainable models from.

``toy_parent`` is an encoder of three strided convolutions (taps ``enc1`` at 1/2,
``enc2`` at 1/4, ``enc3`` at 1/8) and a decoder that reads only ``enc2`` and
``enc3``, ending in a log-softmax over the pixels.
"""

import keras
import numpy as np

from tfsal import explain
from tfsal.layers import BilinearUpsampling2D, SpatialLogSoftmax

# A small bank keeps the unit tests fast: 3 colours x 2 scales x 3 orientations.
SMALL_BANK = {"num_scales": 2, "num_orientations": 3}


def toy_parent(size=32, seed=0) -> keras.Model:
    """The toy parent, with weights fixed by ``seed``."""
    keras.utils.set_random_seed(seed)
    image = keras.Input((size, size, 3), name="image")
    x = keras.layers.Rescaling(1 / 255.0, name="scale")(image)
    enc1 = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="enc1")(x)
    enc2 = keras.layers.Conv2D(6, 3, strides=2, padding="same", activation="relu", name="enc2")(
        enc1
    )
    enc3 = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="enc3")(
        enc2
    )
    up = BilinearUpsampling2D(2, name="dec_up")(enc3)
    merged = keras.layers.Concatenate(name="dec_skip")([up, enc2])
    logits = keras.layers.Conv2D(1, 1, name="dec_logits")(merged)
    logits = BilinearUpsampling2D(4, name="dec_up_out")(logits)
    saliency = SpatialLogSoftmax(name="log_density")(logits)
    return keras.Model(image, {"saliency": saliency}, name="toy_saliency")


def images(count=8, size=32, seed=1) -> np.ndarray:
    """Random smooth-ish RGB images in [0, 255]: blobs of colour on noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    result = []
    for _ in range(count):
        centre = rng.random(2)
        blob = np.exp(-((y - centre[0]) ** 2 + (x - centre[1]) ** 2) / 0.02)
        colour = rng.random(3)
        picture = 60 * rng.random((size, size, 3)) + 190 * blob[..., None] * colour
        result.append(picture)
    return np.clip(result, 0, 255).astype("float32")


def derive_toy(parent: keras.Model | None = None, **kwargs):
    """Derives the toy parent's explainable model on 8 tiny images (4 validation).

    Keyword arguments override the defaults (taps ``enc2``/``enc3``, the small bank,
    two readout epochs) and pass on to ``tfsal.explain.derive``.
    """
    data = images(8)
    settings = {
        "taps": ["enc2", "enc3"],
        "output_kind": "log_density",
        "bank_config": SMALL_BANK,
        "readout_epochs": 2,
        "progress": False,
    }
    settings.update(kwargs)
    return explain.derive(
        parent if parent is not None else toy_parent(), [data[:4], data[4:]], [data[:4]], **settings
    )
