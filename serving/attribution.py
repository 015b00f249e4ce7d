"""Gradient and perturbation attribution of a region's saliency, through tf-explain.

The one module that imports tf-explain (pinned in setup.py; the project is
unmaintained, so its use stays here, where it can be replaced). It explains the
score model of ``serving.region_score`` — ``(batch, h, w, 3) -> [mass, 1 - mass]``
for the region set on it — at the model's canvas resolution, and returns plain
``(h, w)`` float32 maps rather than tf-explain's rendered grids:

- ``gradcam``: Grad-CAM (Selvaraju et al. 2017) on ``layer_name`` (tf-explain cannot
  find a layer in Keras 3; ``default_gradcam_layer`` picks the last multi-channel 4-D
  layer), guided gradients as tf-explain does, ReLU, bilinearly resized to the canvas;
- ``gradients``: |d mass / d pixel| summed over RGB (tf-explain's VanillaGradients);
- ``gradients_inputs``: input × gradient summed over RGB (signed);
- ``smoothgrad``: |gradient| averaged over noisy copies (Smilkov et al. 2017), summed
  over RGB; noise 15% of the [0, 255] range (tf-explain's default of 1 grey level
  changes nothing on such inputs);
- ``ig``: Integrated Gradients (Sundararajan et al. 2017) from a black image:
  tf-explain returns the path's mean gradient, multiplied here by (input − baseline)
  to make the attribution, summed over RGB (signed);
- ``occlusion``: the drop of the mass when a grey patch covers each cell
  (tf-explain's OcclusionSensitivity), resized to the canvas.

Signed maps rank what raises the mass first; every map is finite and larger means
"more responsible for the region's saliency".
"""

import dataclasses
import warnings

import cv2
import keras
import numpy as np

from serving.region_score import SCORE_INDEX

METHODS = ("gradcam", "gradients", "gradients_inputs", "smoothgrad", "ig", "occlusion")


@dataclasses.dataclass(frozen=True)
class AttributionOptions:
    """Settings of the attribution methods.

    Attributes:
        gradcam_layer: the layer Grad-CAM weighs (``None``: ``default_gradcam_layer``).
        ig_steps: points on Integrated Gradients' path (including both ends).
        smoothgrad_samples: noisy copies SmoothGrad averages over.
        smoothgrad_noise: their noise's standard deviation, in grey levels.
        occlusion_patch: occluding patch side in canvas pixels (``None``: 1/14 of the
            canvas's shorter side, 16 px at 224).
        batch_size: images per model call for occlusion.
        seed: seeds SmoothGrad's noise.
    """

    gradcam_layer: str | None = None
    ig_steps: int = 24
    smoothgrad_samples: int = 16
    smoothgrad_noise: float = 0.15 * 255.0
    occlusion_patch: int | None = None
    batch_size: int = 32
    seed: int = 0

    def __post_init__(self):
        for name in ("ig_steps", "smoothgrad_samples", "batch_size"):
            if getattr(self, name) < 1 + (name == "ig_steps"):
                raise ValueError(
                    f"{name} must be >= {1 + (name == 'ig_steps')}. "
                    f"Received: {name}={getattr(self, name)}"
                )
        if self.occlusion_patch is not None and self.occlusion_patch < 1:
            raise ValueError(
                f"occlusion_patch must be >= 1. Received: occlusion_patch={self.occlusion_patch}"
            )


def default_gradcam_layer(model: keras.Model) -> str:
    """The last layer with a 4-D output of more than one channel (Grad-CAM's choice).

    Raises:
        ValueError: if the model has no such layer (e.g. a wrapped SavedModel, whose
            layers are hidden).
    """
    for layer in reversed(model.layers):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        shape = getattr(getattr(layer, "output", None), "shape", None)
        if shape is not None and len(shape) == 4 and (shape[-1] or 0) > 1:
            return layer.name
    raise ValueError(
        f"{model.name} has no layer with a (batch, h, w, channels) output for Grad-CAM. "
        "A SavedModel hides its layers: explain a Keras model (.keras file) for gradcam, "
        "or choose another method."
    )


def attribute(
    score: keras.Model, canvas: np.ndarray, method: str, options: AttributionOptions
) -> np.ndarray:
    """Attributes the score model's mass to the pixels of one canvas image.

    Args:
        score: the model of ``serving.region_score.score_model``, its region set.
        canvas: (h, w, 3) float32 RGB in [0, 255] at the model's input size.
        method: one of ``METHODS``.
        options: method settings.

    Returns:
        (h, w) float32 attribution map.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}. Received: method={method!r}")
    images = np.asarray(canvas, np.float32)[None]
    with warnings.catch_warnings():
        # tf-explain rebuilds models from ``[model.inputs]``, which Keras 3 flattens
        # with a warning on every call.
        warnings.filterwarnings("ignore", message="The structure of `inputs`")
        attribution = _METHODS[method](score, images, options)
    attribution = np.nan_to_num(np.asarray(attribution, np.float32), nan=0.0)
    return attribution.reshape(canvas.shape[:2])


def _gradcam(score, images, options):
    from tf_explain.core import GradCAM

    layer = options.gradcam_layer or default_gradcam_layer(score)
    outputs, grads = GradCAM.get_gradients_and_filters(score, images, layer, SCORE_INDEX, True)
    cam = np.maximum(GradCAM.generate_ponderated_output(outputs, grads)[0].numpy(), 0.0)
    height, width = images.shape[1:3]
    return cv2.resize(cam.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def _gradients(score, images, options):
    from tf_explain.core import VanillaGradients

    gradients = VanillaGradients.compute_gradients(images, score, SCORE_INDEX)
    return np.abs(gradients.numpy()[0]).sum(axis=-1)


def _gradients_inputs(score, images, options):
    from tf_explain.core import GradientsInputs

    return GradientsInputs.compute_gradients(images, score, SCORE_INDEX).numpy()[0].sum(axis=-1)


def _smoothgrad(score, images, options):
    from tf_explain.core import SmoothGrad

    rng = np.random.default_rng(options.seed)
    samples = options.smoothgrad_samples
    # tf-explain draws its noise from numpy's global generator; drawing it here keeps
    # the maps reproducible without reseeding the caller's global state.
    noisy = np.repeat(images, samples, axis=0)
    noisy = noisy + rng.normal(0.0, options.smoothgrad_noise, noisy.shape).astype(np.float32)
    gradients = SmoothGrad.get_averaged_gradients(noisy, score, SCORE_INDEX, samples)
    return np.abs(gradients.numpy()[0]).sum(axis=-1)


def _integrated_gradients(score, images, options):
    from tf_explain.core import IntegratedGradients

    path = IntegratedGradients.generate_interpolations(images, options.ig_steps)
    mean_gradient = IntegratedGradients.get_integrated_gradients(
        path.astype(np.float32), score, SCORE_INDEX, options.ig_steps
    )
    baseline = 0.0  # tf-explain's path starts at a black image
    return ((images[0] - baseline) * mean_gradient.numpy()[0]).sum(axis=-1)


class _QuietPredict:
    """Lets tf-explain call ``model.predict`` without a progress bar per call."""

    def __init__(self, model):
        self._model = model

    def predict(self, batch, batch_size=None):
        return self._model.predict(batch, batch_size=batch_size, verbose=0)


def _occlusion(score, images, options):
    from tf_explain.core import OcclusionSensitivity

    height, width = images.shape[1:3]
    patch = options.occlusion_patch or max(1, min(height, width) // 14)
    side = max(height, width)
    # tf-explain's patch loops index rows by columns (right only for square images):
    # explain a square canvas whose extra rows/columns the model never sees.
    model, image = score, images[0]
    if height != width:
        square = keras.Input((side, side, 3))
        model = keras.Model(
            square, score(keras.layers.Cropping2D(((0, side - height), (0, side - width)))(square))
        )
        image = np.zeros((side, side, 3), np.float32)
        image[:height, :width] = images[0]
    sensitivity = OcclusionSensitivity(batch_size=options.batch_size).get_sensitivity_map(
        _QuietPredict(model), image, SCORE_INDEX, patch
    )
    mass = float(np.asarray(score(images))[0, SCORE_INDEX])
    # tf-explain reports 1 - occluded mass; the drop from the unoccluded mass ranks
    # the same and reads directly.
    drop = np.asarray(sensitivity, np.float32) - (1.0 - mass)
    return drop[:height, :width]


_METHODS = {
    "gradcam": _gradcam,
    "gradients": _gradients,
    "gradients_inputs": _gradients_inputs,
    "smoothgrad": _smoothgrad,
    "ig": _integrated_gradients,
    "occlusion": _occlusion,
}
