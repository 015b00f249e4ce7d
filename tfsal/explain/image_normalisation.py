"""Per-image normalisation of log-Gabor magnitudes: what is rare in this image.

A pop-out singleton is salient because its colour or orientation occurs once in
the image, not because of its local filter response: a red bar among green ones and
a green bar among red ones give the same magnitudes in the same channels. A linear
readout of local magnitudes cannot tell them apart. Two fixed functions of the
image can, each a copy of every channel (issue 13's "fixed per-image normalisation
of the magnitudes"):

- ``"ratio"``: the channel divided by its mean over the image. A channel that
  responds at one item only has a small mean, so its normalised response there is
  large (about N times larger among N items than a channel every item drives).
- ``"excess"``: how much of the pixel's energy the channel holds beyond its share
  in the image as a whole, ``max(|x_k| - s_k E, 0)`` with ``E = Σ_j |x_j|`` the
  pixel's energy over all channels and ``s_k`` channel ``k``'s share of the
  image's energy. It is zero wherever the pixel's mix of colours, scales and
  orientations is the image's usual mix (every distractor, and the blank
  background), and positive in the channels where the odd item departs from it, in
  whichever direction: a bar 15° off its neighbours gains in one orientation and
  loses in another, and only the gain survives. The ratio cannot do this once the
  reconstruction compresses features with ``log1p``: there a per-image factor
  becomes a per-image constant, which the log-softmax of the readout cancels.

- ``"local"``: the channel divided by its Gaussian-weighted mean around the pixel
  (``local_sigmas`` cells): divisive normalisation, a centre-surround contrast.
  Unlike the image-wide ratio it varies over the image, so the reconstruction's
  ``log1p`` does not turn it into a constant: it reads as ``log |x| - log
  blur(|x|)``, how much a channel stands out from its surround. One surround sees
  pop-out at one scale only (an item much larger than the surround fills it, and
  one far smaller than it is averaged away), so, as in Itti and Koch's
  centre-surround pyramid, several surround widths may each give a copy.

The copies are divided by an image-wide or local statistic, so they do not depend on
the image's contrast. After them the reconstruction stays linear in the features and
every term stays attributable to its (colour channel, scale, orientation) group,
each copy belonging to the group of its channel.
"""

import numbers
from collections.abc import Sequence

import keras

from tfsal.explain.tap_readout import normalised_blur

STATISTICS = ("ratio", "excess", "local")
# The smallest image mean a channel is divided by. Magnitudes of images in [0, 1]
# after the bank are about 1e-3 to 1 for visible structure; a blank channel (all
# zeros) then stays zero instead of becoming 0 / 0.
_MIN_MEAN = 1e-6
# The surround of the "local" copy, in cells, when none is given.
_DEFAULT_SURROUND = 4.0


@keras.saving.register_keras_serializable(package="tfsal")
class ImageNormalisation(keras.layers.Layer):
    """Appends per-image normalised copies of every feature channel.

    For each name in ``statistics``, in order, a copy of the K channels:
    ``"ratio"``: ``x / max(mean_hw |x|, 1e-6)``; ``"excess"``:
    ``max(|x_k| - s_k E, 0) / max(mean_hw E, 1e-6)`` with ``E = Σ_j |x_j|`` at the
    pixel and ``s_k = mean_hw |x_k| / mean_hw E``; ``"local"``: ``x / max(G_σ *
    |x|, 1e-6)`` with ``G_σ`` a normalised Gaussian of σ cells, one copy per σ in
    ``local_sigmas``, in their order (module docstring). With ``keep_raw`` the input
    comes first. Channel ``k`` of every copy is channel ``k`` of the input, so a
    model that groups features by channel groups channels ``k``, ``K + k``, ...
    together (``FeatureContributions(copies=copies)``).

    Example:
    ```python
    features = LogGaborBank(output_stride=8)(images)  # (B, h, w, 72)
    both = ImageNormalisation()(features)  # (B, h, w, 144): raw, then ratio
    odd = ImageNormalisation(statistics=("excess",))(features)  # raw, then excess
    # raw, then the contrast against a surround of 2 and of 8 cells: (B, h, w, 216)
    surrounds = ImageNormalisation(statistics=("local",), local_sigmas=(2.0, 8.0))
    ```

    Args:
        keep_raw: keep the raw channels in front of the normalised ones.
        statistics: the normalised copies, each one of ``"ratio"``, ``"excess"``
            and ``"local"``, at least one, no repeats.
        local_sigmas: ``"local"`` only: the surrounds' standard deviations in cells
            of the feature map, each > 0, no repeats (a number for one surround);
            ``None`` for one of 4 cells.
        local_sigma: the one surround of configs saved before ``local_sigmas``
            existed; it stands for ``local_sigmas=(local_sigma,)``, so models saved
            then still load. Pass at most one of the two.
        **kwargs: base layer arguments (name, dtype).

    Call arguments:
        inputs: (B, h, w, K) features.

    Returns:
        (B, h, w, copies · K), block-major: the raw channels (with ``keep_raw``),
        then one block per statistic, ``"local"`` giving one block per surround.
    """

    def __init__(
        self,
        keep_raw: bool = True,
        statistics: Sequence[str] = ("ratio",),
        local_sigmas: float | Sequence[float] | None = None,
        local_sigma: float | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if local_sigmas is None:
            local_sigmas = _DEFAULT_SURROUND if local_sigma is None else local_sigma
        elif local_sigma is not None:
            raise ValueError(
                "Pass local_sigmas or the older local_sigma, not both. Received: "
                f"local_sigmas={local_sigmas!r}, local_sigma={local_sigma!r}"
            )
        self.local_sigmas = local_surrounds(local_sigmas)
        if not isinstance(keep_raw, bool):
            raise ValueError(f"keep_raw must be True or False. Received: keep_raw={keep_raw!r}")
        if isinstance(statistics, str):
            statistics = (statistics,)
        statistics = tuple(statistics)
        if (
            not statistics
            or len(set(statistics)) != len(statistics)
            or any(statistic not in STATISTICS for statistic in statistics)
        ):
            raise ValueError(
                f"statistics must name one or more of {STATISTICS}, each once. "
                f"Received: statistics={statistics!r}"
            )
        self.keep_raw = keep_raw
        self.statistics = statistics

    @property
    def copies(self) -> int:
        """How many output channels come from each input channel."""
        surrounds = len(self.local_sigmas) - 1 if "local" in self.statistics else 0
        return int(self.keep_raw) + len(self.statistics) + surrounds

    def build(self, input_shape):
        """Checks that the features have a known channel axis."""
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(
                "ImageNormalisation expects (batch, height, width, channels) features with a "
                f"known channel count. Received: input_shape={input_shape}"
            )

    def call(self, inputs):
        """Returns the raw channels (if kept) and one normalised copy per statistic."""
        inputs = keras.ops.cast(inputs, self.compute_dtype)
        magnitude = keras.ops.abs(inputs)
        mean = keras.ops.mean(magnitude, axis=(1, 2), keepdims=True)  # (B, 1, 1, K)
        energy_mean = keras.ops.maximum(keras.ops.sum(mean, axis=-1, keepdims=True), _MIN_MEAN)
        blocks = [inputs] if self.keep_raw else []
        for statistic in self.statistics:
            if statistic == "ratio":
                blocks.append(inputs / keras.ops.maximum(mean, _MIN_MEAN))
            elif statistic == "local":
                for sigma in self.local_sigmas:
                    surround = normalised_blur(magnitude, sigma)
                    blocks.append(inputs / keras.ops.maximum(surround, _MIN_MEAN))
            else:
                energy = keras.ops.sum(magnitude, axis=-1, keepdims=True)  # (B, h, w, 1)
                usual = energy * (mean / energy_mean)
                blocks.append(keras.ops.relu(magnitude - usual) / energy_mean)
        return blocks[0] if len(blocks) == 1 else keras.ops.concatenate(blocks, axis=-1)

    def compute_output_shape(self, input_shape):
        """The input shape with ``copies`` times the channels."""
        return (*input_shape[:-1], input_shape[-1] * self.copies)

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(
            keep_raw=self.keep_raw,
            statistics=list(self.statistics),
            local_sigmas=list(self.local_sigmas),
        )
        return config


def local_surrounds(
    sigmas: float | Sequence[float], name: str = "local_sigmas"
) -> tuple[float, ...]:
    """The ``"local"`` copies' surround widths as a tuple, checked.

    Args:
        sigmas: one width or a sequence of them, each > 0, no repeats.
        name: the argument's name in the error message.

    Returns:
        The widths as floats, in the order given.

    Raises:
        ValueError: for no widths, a width that is not a number > 0, or a repeat.
    """
    if isinstance(sigmas, numbers.Real):
        widths = (sigmas,)
    else:
        widths = (
            tuple(sigmas) if isinstance(sigmas, Sequence) and not isinstance(sigmas, str) else ()
        )
    if (
        not widths
        or any(isinstance(w, bool) or not isinstance(w, numbers.Real) or not w > 0 for w in widths)
        or len(set(widths)) != len(widths)
    ):
        raise ValueError(
            f"{name} must be one or more surround widths > 0, each once. "
            f"Received: {name}={sigmas!r}"
        )
    return tuple(float(width) for width in widths)
