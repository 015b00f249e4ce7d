"""The global-context gate of CMRNet: channel attention from whole-image statistics.

A singleton is salient because it differs from *everything else in the image*: a red
disc among green ones pops out, the same red disc among red ones does not. Local
convolutions cannot see that difference (their receptive field covers a few items),
so a CNN without global context learns "items are salient" and highlights all 49 of
a search array. The gate gives every location the image's statistics per channel,
after the channel attention of Woo, Park, Lee and Kweon, "CBAM: Convolutional Block
Attention Module" (ECCV 2018), itself a squeeze-and-excitation (Hu, Shen and Sun,
CVPR 2018) with both average and max pooling:

``y = x * sigmoid(mlp(mean_hw(x)) + mlp(max_hw(x)))``

A channel whose feature is everywhere (the distractors' colour) has a high mean
relative to its maximum; a channel that fires on one item (the target's colour) has
a high maximum and a small mean. With both statistics the shared two-layer ``mlp``
can tell them apart and damp the common features, as the normalisation operator of
Itti, Koch and Niebur (PAMI 1998) promotes feature maps with few strong peaks.
"""

import keras


@keras.saving.register_keras_serializable(package="tfsal")
class GlobalContextGate(keras.layers.Layer):
    """Scales every channel by a gate computed from its spatial mean and maximum.

    Args:
        reduction: the hidden layer of the shared MLP has ``channels // reduction``
            units (at least 1).
        **kwargs: standard layer arguments (``name``, ``dtype``, ...).

    Input shape:
        ``(batch, height, width, channels)``.

    Output shape:
        Same as the input.
    """

    def __init__(self, reduction=4, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(reduction, int) or reduction < 1:
            raise ValueError(f"reduction must be an int >= 1. Received: reduction={reduction!r}")
        self.reduction = reduction

    def build(self, input_shape):
        """Creates the shared two-layer MLP."""
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(
                "GlobalContextGate needs a known channel count. "
                f"Received: input_shape={input_shape}"
            )
        self.hidden = keras.layers.Dense(
            max(1, channels // self.reduction),
            activation="relu",
            dtype=self.dtype_policy,
            name="hidden",
        )
        self.gate = keras.layers.Dense(channels, dtype=self.dtype_policy, name="gate")
        self.hidden.build((None, channels))
        self.gate.build((None, self.hidden.units))

    def call(self, inputs):
        """Returns ``inputs`` scaled per image and channel."""
        mean = keras.ops.mean(inputs, axis=(1, 2))
        peak = keras.ops.max(inputs, axis=(1, 2))
        logits = self.gate(self.hidden(mean)) + self.gate(self.hidden(peak))
        return inputs * keras.ops.sigmoid(logits)[:, None, None, :]

    def compute_output_shape(self, input_shape):
        """The output has the input's shape."""
        return tuple(input_shape)

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update({"reduction": self.reduction})
        return config
