"""The cross-concatenated multi-scale residual block of CMRNet.

The block follows the multi-scale residual block (MSRB) of Li, Fang, Mei and Zhang,
"Multi-scale Residual Network for Image Super-Resolution" (ECCV 2018): two parallel
convolution branches with different receptive fields look at the input; their
outputs are concatenated *crosswise*, so each branch of the second stage sees both
scales; the two second-stage outputs are concatenated, fused by a 1x1 convolution
and added to the block input.

Our choices (CMRNet's exact block was not published to us):

- the wide branch is a dilated 3x3 convolution instead of the MSRB's 5x5: the same
  5x5 receptive field for 9/25 of the weights, which keeps CMRNet small enough to
  train on a CPU;
- each branch carries half of the block's channels (``branch_channels``), so a
  block costs about 19·C² weights instead of the MSRB's 174·C²;
- the 1x1 fusion is linear and the residual sum is followed by no activation, as in
  the MSRB, so a stack of blocks keeps an identity path from input to output.
"""

import keras


@keras.saving.register_keras_serializable(package="tfsal")
class CrossConcatResidualBlock(keras.layers.Layer):
    """Two-scale residual block with crosswise concatenation between its stages.

    ``x -> [narrow_1(x), wide_1(x)] = s -> [narrow_2(s), wide_2(s)] -> fuse -> + x``,
    where the narrow branch uses 3x3 convolutions, the wide branch dilated 3x3
    convolutions, and ``fuse`` is a 1x1 convolution back to the input's channels.

    Args:
        branch_channels: channels of each branch; ``None`` uses half of the input
            channels.
        wide_dilation: dilation rate of the wide branch's 3x3 convolutions.
        activation: activation after every branch convolution.
        **kwargs: standard layer arguments (``name``, ``dtype``, ...).

    Input shape:
        ``(batch, height, width, channels)``.

    Output shape:
        Same as the input.
    """

    def __init__(self, branch_channels=None, wide_dilation=2, activation="relu", **kwargs):
        super().__init__(**kwargs)
        if branch_channels is not None and (
            not isinstance(branch_channels, int) or branch_channels < 1
        ):
            raise ValueError(
                "branch_channels must be None or an int >= 1. "
                f"Received: branch_channels={branch_channels!r}"
            )
        if not isinstance(wide_dilation, int) or wide_dilation < 2:
            raise ValueError(
                "wide_dilation must be an int >= 2 (1 would make both branches equal). "
                f"Received: wide_dilation={wide_dilation!r}"
            )
        self.branch_channels = branch_channels
        self.wide_dilation = wide_dilation
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        """Creates the four branch convolutions and the 1x1 fusion."""
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(
                "CrossConcatResidualBlock needs a known channel count. "
                f"Received: input_shape={input_shape}"
            )
        width = self.branch_channels or max(1, channels // 2)

        def conv(name, dilation):
            return keras.layers.Conv2D(
                width,
                3,
                padding="same",
                dilation_rate=dilation,
                activation=self.activation,
                dtype=self.dtype_policy,
                name=name,
            )

        self.narrow_1 = conv("narrow_1", 1)
        self.wide_1 = conv("wide_1", self.wide_dilation)
        self.narrow_2 = conv("narrow_2", 1)
        self.wide_2 = conv("wide_2", self.wide_dilation)
        self.fuse = keras.layers.Conv2D(channels, 1, dtype=self.dtype_policy, name="fuse")
        cross_shape = (*input_shape[:-1], 2 * width)
        self.narrow_1.build(input_shape)
        self.wide_1.build(input_shape)
        self.narrow_2.build(cross_shape)
        self.wide_2.build(cross_shape)
        self.fuse.build(cross_shape)

    def call(self, inputs):
        """Applies both stages and adds the fused result to ``inputs``."""
        crossed = keras.ops.concatenate([self.narrow_1(inputs), self.wide_1(inputs)], axis=-1)
        second = keras.ops.concatenate([self.narrow_2(crossed), self.wide_2(crossed)], axis=-1)
        return inputs + self.fuse(second)

    def compute_output_shape(self, input_shape):
        """The output has the input's shape."""
        return tuple(input_shape)

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(
            {
                "branch_channels": self.branch_channels,
                "wide_dilation": self.wide_dilation,
                "activation": keras.activations.serialize(self.activation),
            }
        )
        return config
