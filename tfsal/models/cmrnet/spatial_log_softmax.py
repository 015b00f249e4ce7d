"""Log-softmax over the pixels of each map: turns saliency logits into a log-density."""

import keras


@keras.saving.register_keras_serializable(package="tfsal")
class SpatialLogSoftmax(keras.layers.Layer):
    """Normalises each single-channel map so that ``exp`` of it sums to 1 over pixels.

    ``log p(i, j) = x(i, j) - logsumexp over all (i, j) of x``, computed in float32
    so that the normalisation stays exact under mixed precision.

    Input shape:
        ``(batch, height, width, 1)`` logits.

    Output shape:
        Same as the input: a log-density per image.
    """

    def call(self, inputs):
        """Subtracts each map's log-sum-exp over pixels."""
        logits = keras.ops.cast(inputs, "float32")
        return logits - keras.ops.logsumexp(logits, axis=(1, 2, 3), keepdims=True)

    def compute_output_shape(self, input_shape):
        """The output has the input's shape."""
        return tuple(input_shape)

    def compute_output_spec(self, inputs):
        """The output is float32 whatever the compute dtype."""
        return keras.KerasTensor(inputs.shape, dtype="float32")
