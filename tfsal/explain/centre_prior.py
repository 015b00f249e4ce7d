"""A learned centre bias for the explainable model's saliency logits.

Fixation data favour the image centre whatever the content (the centre prior alone
kept 72% of UNISAL's CC on NUS, DESIGN.md §3), so the ``linear`` readout adds this
term to the logits and reports it as its own contribution group, apart from the
log-Gabor features.
"""

import keras
import tensorflow as tf

DEFAULT_WIDTHS = (0.25, 0.5, 1.0)


@keras.saving.register_keras_serializable(package="tfsal")
class CentrePrior(keras.layers.Layer):
    """A learned weighted sum of fixed Gaussian maps centred on the image.

    Map ``j`` is ``exp(-(x^2 + y^2) / (2 widths[j]^2))`` in coordinates that run from
    -1 to 1 across the image's height and width, so the prior stretches with the
    image's aspect ratio and works at any size. Its weights (``weights``, one per
    map) and ``offset`` start at 0.

    Args:
        widths: standard deviations of the maps, in half-image units, each > 0.
        **kwargs: base layer arguments (name, dtype, trainable).

    Call arguments:
        inputs: any (B, H, W, channels) tensor; only its shape is used.

    Returns:
        (B, H, W, 1) prior logits.
    """

    def __init__(self, widths: tuple[float, ...] = DEFAULT_WIDTHS, **kwargs):
        super().__init__(**kwargs)
        widths = tuple(float(w) for w in widths)
        if not widths or any(not w > 0 for w in widths):
            raise ValueError(f"widths must be one or more values > 0. Received: widths={widths!r}")
        self.widths = widths

    def build(self, input_shape):
        """Creates one weight per map and an offset."""
        self.map_weights = self.add_weight(
            shape=(len(self.widths),), initializer="zeros", name="weights"
        )
        self.offset = self.add_weight(shape=(), initializer="zeros", name="offset")

    def maps(self, inputs):
        """The fixed Gaussian maps, (1, H, W, len(widths))."""
        shape = tf.shape(inputs)
        y = tf.linspace(-1.0, 1.0, shape[1])
        x = tf.linspace(-1.0, 1.0, shape[2])
        squared = y[:, None, None] ** 2 + x[None, :, None] ** 2
        widths = tf.constant(self.widths, tf.float32)
        return tf.exp(-squared / (2 * widths**2))[None]

    def call(self, inputs):
        """Returns the prior logits at the size of ``inputs``."""
        maps = tf.cast(self.maps(inputs), self.compute_dtype)
        prior = keras.ops.matmul(maps, self.map_weights[:, None]) + self.offset
        return keras.ops.ones_like(inputs[..., :1], dtype=self.compute_dtype) * prior

    def compute_output_shape(self, input_shape):
        """(B, H, W, 1)."""
        return (*tuple(input_shape[:-1]), 1)

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(widths=self.widths)
        return config
