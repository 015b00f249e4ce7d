"""The number attribution methods explain: the predicted saliency mass inside a region.

``RegionScore`` turns a model's saliency output, ``(batch, height, width, 1)``, into
``(batch, 2)``: the fraction of the predicted saliency that falls inside the region,
and its complement. The fraction is differentiable in the input image and lies in
[0, 1] for both output kinds:

- ``"log_density"``: a softmax over the pixels (the log-density's own normalisation,
  so it is exact even if the logits are shifted), summed over the region;
- ``"map"``: the map's sum inside the region over its sum everywhere, after shifting a
  map with negative values to a minimum of 0 (``shift_to_non_negative``; the rule
  ``tfsal.metrics`` and the derivation's fidelity read signed maps with). A deep map
  model's output is non-negative and unchanged by it, but the explainable model of a
  map parent (MSI-Net) outputs its readout's logits, which can be negative anywhere:
  the plain ratio then had the wrong sign (all-negative logits put the *least* mass in
  the most salient box, and raising the saliency inside the region lowered its score)
  or blew up where the map summed to about 0. A map that is constant after the shift
  spreads its mass uniformly.

Two units rather than one because tf-explain's SmoothGrad differentiates a
categorical cross-entropy against a one-hot target: with a single unit that loss is
constant and its gradient is zero everywhere; with ``[mass, 1 - mass]`` it is
``-log(mass)``, whose gradient points where the mass's does. Every method explains
unit ``SCORE_INDEX``.

The region is a non-trainable mask variable, so one score model serves every image
and region (``set_region``) without tracing the model again.
"""

import keras

from tfsal import conventions

SCORE_INDEX = 0


def shift_to_non_negative(flat_maps):
    """``(batch, pixels)`` maps minus ``min(0, their minimum)``: non-negative maps unchanged."""
    minimum = keras.ops.min(flat_maps, axis=-1, keepdims=True)
    return flat_maps - keras.ops.minimum(minimum, 0.0)


@keras.saving.register_keras_serializable(package="tfsal")
class RegionScore(keras.layers.Layer):
    """Saliency mass inside a region and its complement, ``(batch, 2)``.

    Args:
        output_kind: what the saliency input holds, ``"log_density"`` or ``"map"``.
        **kwargs: standard layer arguments.
    """

    def __init__(self, output_kind: str = conventions.LOG_DENSITY, **kwargs):
        super().__init__(**kwargs)
        if output_kind not in conventions.OUTPUT_KINDS:
            raise ValueError(
                f"output_kind must be one of {conventions.OUTPUT_KINDS}. "
                f"Received: output_kind={output_kind!r}"
            )
        self.output_kind = output_kind

    def build(self, input_shape):
        """Creates the region mask (the whole canvas until ``set_region``)."""
        if len(input_shape) != 4 or input_shape[1] is None or input_shape[2] is None:
            raise ValueError(
                "RegionScore needs a (batch, height, width, 1) saliency input of fixed "
                f"height and width. Received: input_shape={input_shape}"
            )
        self.region_mask = self.add_weight(
            name="region_mask",
            shape=(input_shape[1], input_shape[2]),
            initializer="ones",
            trainable=False,
        )

    def call(self, saliency):
        """Returns ``[mass, 1 - mass]`` of the region for each image."""
        saliency = keras.ops.cast(saliency[..., 0], "float32")
        pixels = saliency.shape[1] * saliency.shape[2]
        flat = keras.ops.reshape(saliency, (-1, pixels))
        if self.output_kind == conventions.LOG_DENSITY:
            weights = keras.ops.softmax(flat, axis=-1)
        else:
            shifted = shift_to_non_negative(flat)
            total = keras.ops.sum(shifted, axis=-1, keepdims=True)
            weights = keras.ops.where(
                total > 0, shifted / keras.ops.maximum(total, 1e-30), 1.0 / pixels
            )
        mask = keras.ops.reshape(self.region_mask, (1, pixels))
        mass = keras.ops.sum(weights * mask, axis=-1, keepdims=True)
        return keras.ops.concatenate([mass, 1.0 - mass], axis=-1)

    def set_region(self, mask) -> None:
        """Sets the (height, width) region mask (1 inside, 0 outside)."""
        self.region_mask.assign(keras.ops.cast(mask, "float32"))

    def compute_output_shape(self, input_shape):
        """Two scores per image."""
        return (input_shape[0], 2)

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update({"output_kind": self.output_kind})
        return config


def score_model(model: keras.Model, output_kind: str) -> tuple[keras.Model, RegionScore]:
    """Wraps a saliency model as a one-output functional model of the region's mass.

    The wrapper reuses ``model``'s layers (no copies, no new weights but the mask), so
    tf-explain's GradCAM finds them by name.

    Args:
        model: a functional model of one image input whose output is the saliency
            map or a dict holding it under ``"saliency"``.
        output_kind: ``"log_density"`` or ``"map"``.

    Returns:
        The score model, ``(batch, h, w, 3) -> (batch, 2)``, and its ``RegionScore``
        layer (to set the region).
    """
    if len(model.inputs) != 1:
        raise ValueError(
            f"The model to explain must take one image input; {model.name} takes "
            f"{len(model.inputs)}."
        )
    outputs = model.output
    if isinstance(outputs, dict):
        if conventions.SALIENCY not in outputs:
            raise ValueError(
                f"{model.name} has no {conventions.SALIENCY!r} output (outputs: {sorted(outputs)})."
            )
        outputs = outputs[conventions.SALIENCY]
    elif isinstance(outputs, list | tuple):
        raise ValueError(
            f"{model.name} has {len(outputs)} unnamed outputs; give it a dict output with "
            f"the saliency map under {conventions.SALIENCY!r}."
        )
    region_score = RegionScore(output_kind, name="region_score")
    return keras.Model(model.inputs[0], region_score(outputs), name="region_mass"), region_score
