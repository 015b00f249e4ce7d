"""Bilinear upsampling by an integer factor that exports with a free input size.

MSI-Net (Kroner et al., Neural Networks 2020) upsamples its decoder with TF1's
``tf.image.resize_bilinear``, whose legacy sampling grid has no half-pixel centres;
the released weights were trained with it, and the two grids differ by up to a
quarter of the input range on random data, so parity with released outputs needs
the legacy one. CMRNet and UNISAL (PyTorch ``align_corners=False``) use the
half-pixel grid. ``keras.layers.UpSampling2D(interpolation="bilinear")`` computes
the same half-pixel values but cannot be exported as a SavedModel whose height and
width are unknown; this layer resizes to ``size`` times the runtime shape instead.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfsal")
class BilinearUpsampling2D(keras.layers.Layer):
    """Bilinear upsampling by an integer factor with a selectable sampling grid.

    Args:
        size: the integer upsampling factor for height and width.
        half_pixel_centers: ``True`` for the TF2 / PyTorch ``align_corners=False``
            grid (what ``keras.layers.UpSampling2D`` uses); ``False`` for the legacy
            TF1 ``resize_bilinear`` grid that maps output pixel ``i`` to input
            ``i / size``.
        **kwargs: standard layer arguments.

    Input shape:
        ``(batch, height, width, channels)``.

    Output shape:
        ``(batch, height * size, width * size, channels)``.
    """

    def __init__(self, size=2, half_pixel_centers=True, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"size must be an int >= 1. Received: size={size!r}")
        self.size = size
        self.half_pixel_centers = bool(half_pixel_centers)

    def call(self, inputs):
        """Resizes ``inputs`` to ``size`` times its height and width."""
        shape = tf.shape(inputs)
        target = shape[1:3] * self.size
        resized = tf.raw_ops.ResizeBilinear(
            images=inputs,
            size=target,
            align_corners=False,
            half_pixel_centers=self.half_pixel_centers,
        )
        return tf.cast(resized, inputs.dtype)

    def compute_output_shape(self, input_shape):
        """Scales the known spatial dimensions by ``size``."""
        batch, height, width, channels = input_shape
        scale = self.size
        return (
            batch,
            None if height is None else height * scale,
            None if width is None else width * scale,
            channels,
        )

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update({"size": self.size, "half_pixel_centers": self.half_pixel_centers})
        return config
