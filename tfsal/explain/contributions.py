"""The named contribution groups of a ``linear`` explainable model.

The model's ``contributions`` output has one channel per log-Gabor feature, summed
over the taps (each tap's per-feature terms upsampled to the input), and a last
channel ``"prior"`` that holds the centre prior plus every constant of the readout.
The channels add up to the saliency logits. ``FeatureContributions`` keeps the
group names in its config, so ``group_names(model)`` works after a reload.

When the readout reads several copies of every feature (the raw magnitudes and
their per-image normalisation, ``ImageNormalisation``), each copy's term belongs to
the group of its feature: ``copies=2`` folds a tap's 2K feature terms into K groups.
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


def fold_blocks(terms, copies: int):
    """(..., copies · F) terms in ``copies`` equal blocks -> (..., F), the blocks added."""
    features = terms.shape[-1] // copies
    folded = terms[..., :features]
    for copy in range(1, copies):
        folded = folded + terms[..., copy * features : (copy + 1) * features]
    return folded


@keras.saving.register_keras_serializable(package="tfsal")
class FeatureContributions(keras.layers.Layer):
    """Adds the taps' per-feature contribution maps and the prior into named groups.

    Args:
        group_names: one name per output channel; the last one is ``"prior"``.
        copies: how many terms each tap brings per feature group, >= 1: the tap's
            channels are ``copies`` blocks of the G - 1 features (block-major, as
            ``ImageNormalisation`` emits them), then its constant.
        **kwargs: base layer arguments (name, dtype).

    Call arguments:
        inputs: ``[tap_1, ..., tap_n, prior]``: (B, H, W, copies · (G - 1) + 1)
            contributions of each tap (features, then the tap's constant) and the
            (B, H, W, 1) prior.

    Returns:
        (B, H, W, G): the taps' contributions summed, the copies of a feature added
        into its group, the prior added to the last channel.
    """

    def __init__(self, group_names: list[str], copies: int = 1, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(copies, int) or isinstance(copies, bool) or copies < 1:
            raise ValueError(f"copies must be an int >= 1. Received: copies={copies!r}")
        self.copies = copies
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
        """Checks that every tap brings ``copies`` channels per feature group."""
        expected = self.copies * (len(self.group_names) - 1) + 1
        for shape in input_shape[:-1]:
            if shape[-1] != expected:
                raise ValueError(
                    f"{len(self.group_names)} group names for {shape[-1]} contribution "
                    f"channels of a tap (with copies={self.copies} they need {expected}). "
                    f"Received: input_shape={input_shape}"
                )

    def call(self, inputs):
        """Sums the taps' maps, folds the copies into groups, adds the prior last."""
        *taps, prior = inputs
        total = taps[0]
        for tap in taps[1:]:
            total = total + tap
        grouped = fold_blocks(total[..., :-1], self.copies)
        return keras.ops.concatenate([grouped, total[..., -1:] + prior], axis=-1)

    def compute_output_shape(self, input_shape):
        """One channel per group."""
        return (*input_shape[0][:-1], len(self.group_names))

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(group_names=list(self.group_names), copies=self.copies)
        return config


@keras.saving.register_keras_serializable(package="tfsal")
class FoldCopies(keras.layers.Layer):
    """Adds the copies of every feature's term of one tap into one channel.

    A tap's contributions at its own resolution hold ``copies`` blocks of the F
    feature terms, then its constant; this layer returns the F sums, then the
    constant. Upsampling is linear, so folding before it gives the same maps as
    ``FeatureContributions(copies=copies)`` after it, with ``copies`` times fewer
    channels to upsample to the image.

    Args:
        copies: blocks of feature terms in the input, >= 1.
        **kwargs: base layer arguments (name, dtype).

    Call arguments:
        inputs: (B, h, w, copies · F + 1) contributions of one tap.

    Returns:
        (B, h, w, F + 1).
    """

    def __init__(self, copies: int, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(copies, int) or isinstance(copies, bool) or copies < 1:
            raise ValueError(f"copies must be an int >= 1. Received: copies={copies!r}")
        self.copies = copies

    def build(self, input_shape):
        """Checks that the channels are ``copies`` equal blocks and a constant."""
        channels = input_shape[-1]
        if channels is None or (channels - 1) % self.copies or channels < self.copies + 1:
            raise ValueError(
                f"FoldCopies(copies={self.copies}) needs copies · F + 1 channels. "
                f"Received: input_shape={input_shape}"
            )

    def call(self, inputs):
        """Sums the blocks channel by channel and keeps the constant last."""
        folded = fold_blocks(inputs[..., :-1], self.copies)
        return keras.ops.concatenate([folded, inputs[..., -1:]], axis=-1)

    def compute_output_shape(self, input_shape):
        """The input shape with F + 1 channels."""
        return (*input_shape[:-1], (input_shape[-1] - 1) // self.copies + 1)

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(copies=self.copies)
        return config
