"""Saliency losses of the original papers, as registered Keras losses.

Every loss compares a model's ``"saliency"`` output ``(batch, h, w, 1)`` with the
training target of ``tfsal.data.pipeline.make_pipeline``: ``(batch, h, w, 2)`` where
channel 0 is the ground-truth density (sums to 1 per image) and channel 1 the binary
fixation map, both at the model's resolution.

- ``LogDensityLoss``: UNISAL (Droste et al., "Unified Image and Video Saliency
  Modeling", ECCV 2020): ``1·KLD − 0.1·NSS − 0.1·CC`` on a log-density output, where
  KLD is KL(ground truth ‖ prediction) summed over pixels and NSS and CC are computed
  on the predicted density ``exp(log_density)``.
- ``MapKLDivergence``: MSI-Net (Kroner et al., "Contextual encoder-decoder network
  for visual saliency prediction", Neural Networks 2020): both maps normalised to sum
  to 1, then ``sum(gt · log(eps + gt / (eps + pred)))`` with ``eps = 1e-7``.

The per-image terms are public functions so training can report them as metrics.
Images without fixations (an all-zero fixation map) contribute 0 to NSS instead of
a 0/0, so no loss here returns NaN for them.
"""

import keras
from keras import ops

from tfsal.conventions import LOG_DENSITY, MAP, OUTPUT_KINDS
from tfsal.metrics import tensor_metrics

# Guards the standard deviations and sums of degenerate (constant, all-zero) maps.
_STABILITY_EPSILON = 1e-7


def _check_output_kind(output: str) -> None:
    if output not in OUTPUT_KINDS:
        raise ValueError(f"output must be one of {OUTPUT_KINDS}. Received: output={output!r}")


def _flatten_pixels(maps):
    """(batch, h, w[, 1]) -> (batch, h·w) float32."""
    maps = ops.cast(maps, "float32")
    return ops.reshape(maps, (ops.shape(maps)[0], -1))


def _split_target(y_true):
    """Returns the flattened density and fixation maps of a (batch, h, w, 2) target."""
    y_true = ops.convert_to_tensor(y_true)
    if y_true.shape.rank != 4 or y_true.shape[-1] != 2:
        raise ValueError(
            "The saliency target must have shape (batch, height, width, 2): density and "
            f"fixation map. Received: shape={tuple(y_true.shape)}"
        )
    density = _flatten_pixels(y_true[..., 0])
    fixations = _flatten_pixels(y_true[..., 1])
    return density, fixations


def predicted_density(y_pred, output: str = LOG_DENSITY):
    """Turns a saliency output into a probability distribution over pixels.

    Args:
        y_pred: the model's ``"saliency"`` output, ``(batch, h, w, 1)``.
        output: ``"log_density"`` (``exp`` is the density) or ``"map"`` (non-negative
            scores, normalised to sum to 1).

    Returns:
        ``(batch, h·w)`` float32; every row sums to 1 (up to float error).
    """
    _check_output_kind(output)
    flat = _flatten_pixels(y_pred)
    if output == LOG_DENSITY:
        # Renormalise in log space: the models' log-softmax already sums to 1, but a
        # saliency head that does not should not bias KLD.
        return ops.exp(flat - ops.logsumexp(flat, axis=-1, keepdims=True))
    flat = ops.maximum(flat, 0.0)
    return flat / (ops.sum(flat, axis=-1, keepdims=True) + _STABILITY_EPSILON)


def kl_divergence(y_true, y_pred, output: str = LOG_DENSITY, epsilon: float = 1e-7):
    """Per-image KL(ground-truth density ‖ predicted density), summed over pixels.

    For ``"log_density"`` outputs this is UNISAL's exact ``sum gt·(log gt − log p)``
    (with ``0·log 0 = 0``); for ``"map"`` outputs it is MSI-Net's
    ``sum gt·log(eps + gt / (eps + p))``.

    Args:
        y_true: ``(batch, h, w, 2)`` target (density, fixations).
        y_pred: ``(batch, h, w, 1)`` saliency output.
        output: what ``y_pred`` holds: ``"log_density"`` or ``"map"``.
        epsilon: MSI-Net's regulariser, used for ``"map"`` outputs.

    Returns:
        ``(batch,)`` float32.
    """
    _check_output_kind(output)
    density, _ = _split_target(y_true)
    density = density / (ops.sum(density, axis=-1, keepdims=True) + _STABILITY_EPSILON)
    if output == LOG_DENSITY:
        flat = _flatten_pixels(y_pred)
        log_prediction = flat - ops.logsumexp(flat, axis=-1, keepdims=True)
        return tensor_metrics.log_density_kl_divergence(density, log_prediction)
    prediction = predicted_density(y_pred, MAP)
    return tensor_metrics.kl_divergence(density, prediction, epsilon)


def normalized_scanpath_saliency(y_true, y_pred, output: str = LOG_DENSITY):
    """Per-image NSS: the standardised predicted density averaged at fixations.

    Images without fixations score 0 (not NaN).

    Args:
        y_true: ``(batch, h, w, 2)`` target (density, fixations).
        y_pred: ``(batch, h, w, 1)`` saliency output.
        output: what ``y_pred`` holds: ``"log_density"`` or ``"map"``.

    Returns:
        ``(batch,)`` float32.
    """
    _, fixations = _split_target(y_true)
    prediction = predicted_density(y_pred, output)
    # The population standard deviation (ddof 0), as the loss has always used.
    return tensor_metrics.normalized_scanpath_saliency(
        prediction, fixations, ddof=0, epsilon=_STABILITY_EPSILON
    )


def correlation_coefficient(y_true, y_pred, output: str = LOG_DENSITY):
    """Per-image Pearson correlation of the predicted and ground-truth densities.

    Args:
        y_true: ``(batch, h, w, 2)`` target (density, fixations).
        y_pred: ``(batch, h, w, 1)`` saliency output.
        output: what ``y_pred`` holds: ``"log_density"`` or ``"map"``.

    Returns:
        ``(batch,)`` float32 in [-1, 1]; 0 when either map is constant.
    """
    density, _ = _split_target(y_true)
    prediction = predicted_density(y_pred, output)
    return tensor_metrics.correlation_coefficient(prediction, density, epsilon=1e-12)


@keras.saving.register_keras_serializable(package="tfsal")
class LogDensityLoss(keras.losses.Loss):
    """UNISAL's loss on log-density outputs: ``a·KLD − b·NSS − c·CC``.

    The defaults are the paper's ``1·KLD − 0.1·NSS − 0.1·CC``; ``nss_weight`` and
    ``cc_weight`` are the (positive) weights of the similarity terms that are
    subtracted. UNISAL's MIT1003 fine-tuning uses KLD alone
    (``nss_weight=0, cc_weight=0``).

    Args:
        kld_weight: weight of KL(ground truth ‖ prediction).
        nss_weight: weight subtracted per unit of NSS.
        cc_weight: weight subtracted per unit of CC.
        name: the loss name.
        reduction: Keras reduction over the batch.
        dtype: the loss dtype.
    """

    def __init__(
        self,
        kld_weight: float = 1.0,
        nss_weight: float = 0.1,
        cc_weight: float = 0.1,
        name: str = "log_density_loss",
        reduction: str = "sum_over_batch_size",
        dtype=None,
    ):
        for argument, value in (
            ("kld_weight", kld_weight),
            ("nss_weight", nss_weight),
            ("cc_weight", cc_weight),
        ):
            if value < 0:
                raise ValueError(f"{argument} must be >= 0. Received: {argument}={value}")
        if kld_weight == nss_weight == cc_weight == 0:
            raise ValueError("At least one of kld_weight, nss_weight, cc_weight must be > 0.")
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.kld_weight = kld_weight
        self.nss_weight = nss_weight
        self.cc_weight = cc_weight

    def call(self, y_true, y_pred):
        """Returns the per-image loss, ``(batch,)``."""
        loss = self.kld_weight * kl_divergence(y_true, y_pred, LOG_DENSITY)
        if self.nss_weight:
            loss -= self.nss_weight * normalized_scanpath_saliency(y_true, y_pred, LOG_DENSITY)
        if self.cc_weight:
            loss -= self.cc_weight * correlation_coefficient(y_true, y_pred, LOG_DENSITY)
        return loss

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(
            kld_weight=self.kld_weight, nss_weight=self.nss_weight, cc_weight=self.cc_weight
        )
        return config


@keras.saving.register_keras_serializable(package="tfsal")
class MapKLDivergence(keras.losses.Loss):
    """MSI-Net's loss on saliency-map outputs: regularised KLD (``eps = 1e-7``).

    Both maps are normalised to sum to 1, then
    ``sum(gt · log(eps + gt / (eps + pred)))`` per image, averaged over the batch.

    Args:
        epsilon: the regulariser inside the logarithm and the division.
        name: the loss name.
        reduction: Keras reduction over the batch.
        dtype: the loss dtype.
    """

    def __init__(
        self,
        epsilon: float = 1e-7,
        name: str = "map_kl_divergence",
        reduction: str = "sum_over_batch_size",
        dtype=None,
    ):
        if not epsilon > 0:
            raise ValueError(f"epsilon must be > 0. Received: epsilon={epsilon}")
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.epsilon = epsilon

    def call(self, y_true, y_pred):
        """Returns the per-image loss, ``(batch,)``."""
        return kl_divergence(y_true, y_pred, MAP, epsilon=self.epsilon)

    def get_config(self):
        """Returns the constructor arguments."""
        config = super().get_config()
        config.update(epsilon=self.epsilon)
        return config


def loss_for_output(output: str, **kwargs) -> keras.losses.Loss:
    """Returns the paper loss that fits a model's output kind.

    Args:
        output: ``"log_density"`` (UNISAL's loss) or ``"map"`` (MSI-Net's KLD).
        **kwargs: passed to the loss (weights or epsilon).

    Returns:
        A ``LogDensityLoss`` or ``MapKLDivergence``.
    """
    _check_output_kind(output)
    if output == LOG_DENSITY:
        return LogDensityLoss(**kwargs)
    return MapKLDivergence(**kwargs)
