"""Per-image normalisation of log-Gabor magnitudes: what is rare in this image.

A pop-out singleton is salient because its colour or orientation occurs once in
the image, not because of its local filter response: a red bar among green ones and
a green bar among red ones give the same magnitudes in the same channels. A linear
readout of local magnitudes cannot tell them apart; dividing every channel by its
mean over the image can, because a channel that responds at one item only has a
small mean, so its normalised response there is large (about N times larger among
N items than a channel every item drives). This is the "fixed per-image
normalisation of the magnitudes" issue 13 allows: a fixed function of the image
with no learned weight, after which the reconstruction stays linear in the
features and every term stays attributable to its (colour channel, scale,
orientation) group, the normalised copy belonging to the group of its channel.
"""

import keras

# The smallest image mean a channel is divided by. Magnitudes of images in [0, 1]
# after the bank are about 1e-3 to 1 for visible structure; a blank channel (all
# zeros) then stays zero instead of becoming 0 / 0.
_MIN_MEAN = 1e-6


@keras.saving.register_keras_serializable(package="tfsal")
class ImageNormalisation(keras.layers.Layer):
    """Appends every feature channel divided by its mean magnitude over the image.

    ``output = concat([x, x / max(mean_hw |x|, 1e-6)])`` (or the normalised copy
    alone with ``keep_raw=False``): channel ``k`` of the copy is channel ``k`` of the
    input, so a model that groups features by channel groups channel ``k`` and
    ``K + k`` together (``FeatureContributions(copies=2)``).

    Example:
    ```python
    features = LogGaborBank(output_stride=8)(images)  # (B, h, w, 72)
    both = ImageNormalisation()(features)  # (B, h, w, 144): raw, then normalised
    ```

    Args:
        keep_raw: keep the raw channels in front of the normalised ones.
        **kwargs: base layer arguments (name, dtype).

    Call arguments:
        inputs: (B, h, w, K) features.

    Returns:
        (B, h, w, 2K) with ``keep_raw``, else (B, h, w, K).
    """

    def __init__(self, keep_raw: bool = True, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(keep_raw, bool):
            raise ValueError(f"keep_raw must be True or False. Received: keep_raw={keep_raw!r}")
        self.keep_raw = keep_raw

    @property
    def copies(self) -> int:
        """How many output channels come from each input channel."""
        return 2 if self.keep_raw else 1

    def build(self, input_shape):
        """Checks that the features have a known channel axis."""
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(
                "ImageNormalisation expects (batch, height, width, channels) features with a "
                f"known channel count. Received: input_shape={input_shape}"
            )

    def call(self, inputs):
        """Divides every channel by its mean magnitude over the image."""
        inputs = keras.ops.cast(inputs, self.compute_dtype)
        mean = keras.ops.mean(keras.ops.abs(inputs), axis=(1, 2), keepdims=True)
        normalised = inputs / keras.ops.maximum(mean, _MIN_MEAN)
        if not self.keep_raw:
            return normalised
        return keras.ops.concatenate([inputs, normalised], axis=-1)

    def compute_output_shape(self, input_shape):
        """The input shape with ``copies`` times the channels."""
        return (*input_shape[:-1], input_shape[-1] * self.copies)

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(keep_raw=self.keep_raw)
        return config
