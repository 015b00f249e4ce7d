"""Log-softmax over the pixels of each map: turns saliency logits into a log-density.

The probabilistic saliency models (UNISAL, Droste, Jiao and Noble, ECCV 2020, whose
``utils.log_softmax`` flattens height and width; CMRNet) end with this layer, so that
``exp`` of the output is a probability distribution over the pixels of each image,
the form the KLD training loss and the probabilistic metrics expect.
"""

import keras


@keras.saving.register_keras_serializable(package="tfsal")
class SpatialLogSoftmax(keras.layers.Layer):
    """Normalises each image's logits so that ``exp`` of them sums to 1 over its pixels.

    ``out = x - logsumexp(x)``, where the log-sum-exp runs over height, width and
    channels of each image (for the usual single-channel map: over its pixels).
    The log-sum-exp subtracts the maximum before exponentiating, so large logits
    neither overflow nor lose the normalisation.

    The maths is float32 whatever the dtype policy: the layer's dtype defaults to
    ``"float32"`` (so that a ``"mixed_float16"`` global policy does not round float32
    logits to float16 on the way in), float16 inputs are cast up, and the output is
    float32. In half precision ``exp`` of the log-density would not sum to 1 to
    within the tolerance the losses and metrics assume.

    Args:
        **kwargs: standard layer arguments (``name``, ``dtype``, ...).

    Input shape:
        ``(batch, height, width, channels)`` logits.

    Output shape:
        Same as the input, float32: a log-density per image.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def build(self, input_shape):
        """Checks that the input is a batch of maps."""
        if len(input_shape) != 4:
            raise ValueError(
                "SpatialLogSoftmax expects inputs of shape (batch, height, width, channels). "
                f"Received: input_shape={tuple(input_shape)}"
            )

    def call(self, inputs):
        """Subtracts each image's log-sum-exp over its pixels and channels."""
        logits = keras.ops.cast(inputs, "float32")
        return logits - keras.ops.logsumexp(logits, axis=(1, 2, 3), keepdims=True)

    def compute_output_shape(self, input_shape):
        """The output has the input's shape."""
        return tuple(input_shape)

    def compute_output_spec(self, inputs):
        """The output is float32 whatever the compute dtype."""
        return keras.KerasTensor(self.compute_output_shape(inputs.shape), dtype="float32")
