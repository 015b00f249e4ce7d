"""The named contribution groups of a ``linear`` explainable model.

The model's ``contributions`` output has one channel per log-Gabor feature, summed
over the taps (each tap's per-feature terms upsampled to the input), and a last
channel ``"prior"`` that holds the centre prior plus every constant of the readout.
The channels add up to the saliency logits. ``FeatureContributions`` keeps the
group names in its config, so ``group_names(model)`` works after a reload.
"""

import keras

PRIOR_GROUP = "prior"


def feature_group_name(colour: str, scale: int | None, orientation: int | None) -> str:
    """The group name of one log-Gabor feature, e.g. ``"Y/scale0/orientation3"``.

    Low-pass residual channels (scale and orientation ``None``) are ``"Y/lowpass"``.
    """
    if scale is None:
        return f"{colour}/lowpass"
    return f"{colour}/scale{scale}/orientation{orientation}"


@keras.saving.register_keras_serializable(package="tfsal")
class FeatureContributions(keras.layers.Layer):
    """Adds the taps' per-feature contribution maps and the prior into named groups.

    Args:
        group_names: one name per output channel; the last one is ``"prior"``.
        **kwargs: base layer arguments (name, dtype).

    Call arguments:
        inputs: ``[tap_1, ..., tap_n, prior]``: (B, H, W, G) contributions of each
            tap (features, then the tap's constant) and the (B, H, W, 1) prior.

    Returns:
        (B, H, W, G): the taps' contributions summed, the prior added to the last
        channel.
    """

    def __init__(self, group_names: list[str], **kwargs):
        super().__init__(**kwargs)
        group_names = [str(name) for name in group_names]
        if len(group_names) < 2 or group_names[-1] != PRIOR_GROUP:
            raise ValueError(
                f"group_names must list the feature groups, then {PRIOR_GROUP!r}. "
                f"Received: group_names={group_names!r}"
            )
        if len(set(group_names)) != len(group_names):
            raise ValueError(f"group_names must be unique. Received: group_names={group_names!r}")
        self.group_names = group_names

    def build(self, input_shape):
        """Checks that every tap brings one channel per group."""
        for shape in input_shape[:-1]:
            if shape[-1] != len(self.group_names):
                raise ValueError(
                    f"{len(self.group_names)} group names for {shape[-1]} contribution "
                    f"channels. Received: input_shape={input_shape}"
                )

    def call(self, inputs):
        """Sums the taps' maps and adds the prior to the last group."""
        *taps, prior = inputs
        total = taps[0]
        for tap in taps[1:]:
            total = total + tap
        padding = keras.ops.zeros_like(total[..., :-1])
        return total + keras.ops.concatenate([padding, prior], axis=-1)

    def compute_output_shape(self, input_shape):
        """The shape of one tap's contributions."""
        return tuple(input_shape[0])

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(group_names=list(self.group_names))
        return config
