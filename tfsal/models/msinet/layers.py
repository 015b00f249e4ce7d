"""The two operations of MSI-Net that Keras has no layer for.

- ``SpatialBroadcast``: the last step of the ASPP global branch. MSI-Net resizes the
  1x1 global context bilinearly to the feature size; from a single pixel every
  bilinear variant reduces to a copy, which is what this layer does.
- ``MinMaxNormalization``: MSI-Net's output, ``(x - min) / (eps + max(x - min))``
  per image (the maximum is taken after subtracting the minimum), in float32.

MSI-Net's decoder upsampling on the legacy TF1 grid is ``BilinearUpsampling2D`` in
``tfsal.layers``, shared with the other model families.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfsal")
class SpatialBroadcast(keras.layers.Layer):
    """Copies a ``(batch, 1, 1, channels)`` context vector over a reference's grid.

    Called on ``[context, reference]``; the output has the context's channels and
    the reference's height and width.
    """

    def call(self, inputs):
        """Broadcasts ``inputs[0]`` to the spatial size of ``inputs[1]``."""
        context, reference = inputs
        reference_shape = tf.shape(reference)
        target = tf.stack(
            [tf.shape(context)[0], reference_shape[1], reference_shape[2], tf.shape(context)[3]]
        )
        return tf.broadcast_to(context, target)

    def compute_output_shape(self, input_shape):
        """Takes the batch and channels of the context, the grid of the reference."""
        context_shape, reference_shape = input_shape
        return (context_shape[0], reference_shape[1], reference_shape[2], context_shape[3])

    def build(self, input_shape):
        """Checks that the context is a single pixel."""
        context_shape = input_shape[0]
        if context_shape[1] not in (1, None) or context_shape[2] not in (1, None):
            raise ValueError(
                "SpatialBroadcast expects a context of spatial size 1x1. "
                f"Received: context shape={tuple(context_shape)}"
            )


@keras.saving.register_keras_serializable(package="tfsal")
class MinMaxNormalization(keras.layers.Layer):
    """Rescales every image to [0, 1]: ``(x - min) / (epsilon + max(x - min))``.

    Args:
        epsilon: added to the range so that a constant map gives zeros, not NaNs.
        **kwargs: standard layer arguments.
    """

    def __init__(self, epsilon=1e-7, **kwargs):
        super().__init__(**kwargs)
        if not epsilon >= 0:
            raise ValueError(f"epsilon must be >= 0. Received: epsilon={epsilon!r}")
        self.epsilon = float(epsilon)

    def call(self, inputs):
        """Normalises each image over its height, width and channels, in float32."""
        inputs = keras.ops.cast(inputs, "float32")
        axes = tuple(range(1, len(inputs.shape)))
        shifted = inputs - keras.ops.min(inputs, axis=axes, keepdims=True)
        return shifted / (self.epsilon + keras.ops.max(shifted, axis=axes, keepdims=True))

    def compute_output_shape(self, input_shape):
        """The output has the input's shape."""
        return tuple(input_shape)

    def compute_output_spec(self, inputs):
        """The output is float32 whatever the compute dtype (epsilon underflows in float16)."""
        return keras.KerasTensor(inputs.shape, dtype="float32")

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config["epsilon"] = self.epsilon
        return config
