"""Replicate ("edge") padding of feature maps, PyTorch's ``padding_mode="replicate"``.

UNISAL (Droste, Jiao and Noble, ECCV 2020) pads its output with the border pixels
before the 41x41 smoothing convolution. ``keras.ops.pad(mode="edge")`` is not
implemented by the TensorFlow backend, and ``"symmetric"`` padding mirrors the image
instead, which is not equivalent.
"""

import keras


@keras.saving.register_keras_serializable(package="tfsal")
class EdgePadding2D(keras.layers.Layer):
    """Pads height and width by repeating the border pixels (PyTorch "replicate").

    Implemented as a gather with clipped indices, so it works with height and width
    unknown until run time.

    Args:
        padding: pixels added on each of the four sides.
        **kwargs: standard layer arguments (``name``, ``dtype``, ...).

    Input shape:
        ``(batch, height, width, channels)``.

    Output shape:
        ``(batch, height + 2 * padding, width + 2 * padding, channels)``.
    """

    def __init__(self, padding, **kwargs):
        super().__init__(**kwargs)
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ValueError(f"padding must be an int >= 0. Received: padding={padding!r}")
        self.padding = padding

    def call(self, inputs):
        """Returns ``inputs`` with replicated borders."""
        shape = keras.ops.shape(inputs)
        padded = inputs
        for axis in (1, 2):
            indices = keras.ops.arange(-self.padding, shape[axis] + self.padding)
            indices = keras.ops.clip(indices, 0, shape[axis] - 1)
            padded = keras.ops.take(padded, indices, axis=axis)
        return padded

    def compute_output_shape(self, input_shape):
        """Returns ``input_shape`` grown by the padding on each side."""
        grow = 2 * self.padding
        height, width = input_shape[1], input_shape[2]
        return (
            input_shape[0],
            None if height is None else height + grow,
            None if width is None else width + grow,
            input_shape[3],
        )

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update({"padding": self.padding})
        return config
