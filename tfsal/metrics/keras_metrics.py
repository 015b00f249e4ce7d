"""Saliency metrics as Keras metrics, for ``model.fit`` and ``model.evaluate``.

They compare the model's ``"saliency"`` output, (B, h, w, 1), with the data
pipeline's target, (B, h, w, 2): channel 0 the density, channel 1 the binary
fixation map, both at the model's resolution. ``output`` says what the model
predicts: ``"log_density"`` (exponentiated first) or ``"map"``. Each metric is the
mean of per-image values over every image seen since the last reset, so results do
not depend on how the data are batched; images without fixations do not count for
the fixation-based metrics.

Conventions are those of ``tfsal.metrics.functional`` (MIT by default). Scores at
the model's resolution approximate the benchmark's scores at the original image
size; ``tfsal.evaluation`` computes the latter.

```python
model.compile(
    optimizer="adam",
    loss={"saliency": loss},
    metrics={"saliency": [CorrelationCoefficient(), NormalizedScanpathSaliency()]},
)
```
"""

import keras
import tensorflow as tf

from tfsal.conventions import LOG_DENSITY, OUTPUT_KINDS
from tfsal.metrics import tensor_metrics
from tfsal.metrics.functional import EPS


@keras.saving.register_keras_serializable(package="tfsal")
class SaliencyMetric(keras.metrics.Metric):
    """Base class: the mean over images of a per-image saliency score.

    Subclasses implement ``score(saliency, density, fixations, raw)`` on (B, h*w)
    tensors and return (B,) scores and (B,) 0/1 validity weights.

    Args:
        output: what the model's saliency output holds, "log_density" or "map".
        name: the metric's name.
        dtype: the dtype of the metric's state.
    """

    def __init__(self, output: str = LOG_DENSITY, name: str | None = None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        if output not in OUTPUT_KINDS:
            raise ValueError(f"output must be one of {OUTPUT_KINDS}. Received: output={output!r}")
        self.output = output
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def score(self, saliency, density, fixations, raw):
        """Returns (B,) per-image scores and (B,) weights (0 where undefined)."""
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Adds the per-image scores of one batch."""
        y_true = tf.convert_to_tensor(y_true, "float32")
        y_pred = tf.convert_to_tensor(y_pred, "float32")
        if y_true.shape.rank != 4 or y_true.shape[-1] != 2:
            raise ValueError(
                f"{self.name}: y_true must be (batch, height, width, 2): density and fixation "
                f"map. Received: shape={y_true.shape}"
            )
        if y_pred.shape.rank != 4 or y_pred.shape[-1] != 1:
            raise ValueError(
                f"{self.name}: y_pred must be the (batch, height, width, 1) saliency output. "
                f"Received: shape={y_pred.shape}"
            )
        batch = tf.shape(y_pred)[0]
        raw = tf.reshape(y_pred, (batch, -1))
        saliency = tf.exp(raw) if self.output == LOG_DENSITY else raw
        density = tf.reshape(y_true[..., 0], (batch, -1))
        fixations = tf.cast(tf.reshape(y_true[..., 1], (batch, -1)) > 0, "float32")
        values, weights = self.score(saliency, density, fixations, raw)
        if sample_weight is not None:
            weights = weights * tf.reshape(tf.cast(sample_weight, "float32"), (-1,))
        values = tf.where(weights > 0, values, tf.zeros_like(values))
        self.total.assign_add(tf.cast(tf.reduce_sum(values * weights), self.dtype))
        self.count.assign_add(tf.cast(tf.reduce_sum(weights), self.dtype))

    def result(self):
        """Returns the mean score over the images seen."""
        return tf.math.divide_no_nan(self.total, self.count)

    def reset_state(self):
        """Forgets every image seen."""
        self.total.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        """Returns the constructor arguments."""
        return {**super().get_config(), "output": self.output}


def _min_max(values):
    low = tf.reduce_min(values, axis=1, keepdims=True)
    high = tf.reduce_max(values, axis=1, keepdims=True)
    return tf.where(high > low, tf.math.divide_no_nan(values - low, high - low), values)


def _to_distribution(values):
    values = values - tf.minimum(tf.reduce_min(values, axis=1, keepdims=True), 0.0)
    total = tf.reduce_sum(values, axis=1, keepdims=True)
    size = tf.cast(tf.shape(values)[1], values.dtype)
    return tf.where(total > 0, tf.math.divide_no_nan(values, total), tf.ones_like(values) / size)


def _has_fixations(fixations):
    return tf.cast(tf.reduce_sum(fixations, axis=1) > 0, "float32")


@keras.saving.register_keras_serializable(package="tfsal")
class CorrelationCoefficient(SaliencyMetric):
    """Pearson's CC between the saliency map and the density (``functional.cc``).

    Args:
        output: "log_density" or "map".
        name: the metric's name.
        dtype: the state's dtype.
    """

    def __init__(self, output: str = LOG_DENSITY, name: str = "cc", dtype=None):
        super().__init__(output=output, name=name, dtype=dtype)

    def score(self, saliency, density, fixations, raw):
        """See ``SaliencyMetric.score``."""
        values = tensor_metrics.correlation_coefficient(saliency, density)
        return values, tf.ones_like(values)


@keras.saving.register_keras_serializable(package="tfsal")
class NormalizedScanpathSaliency(SaliencyMetric):
    """NSS at the fixated pixels (``functional.nss``; MIT ``ddof=1`` by default).

    Args:
        output: "log_density" or "map".
        ddof: delta degrees of freedom of the standard deviation (MIT 1, pysaliency 0).
        name: the metric's name.
        dtype: the state's dtype.
    """

    def __init__(self, output: str = LOG_DENSITY, ddof: int = 1, name: str = "nss", dtype=None):
        super().__init__(output=output, name=name, dtype=dtype)
        if ddof not in (0, 1):
            raise ValueError(f"ddof must be 0 or 1. Received: ddof={ddof}")
        self.ddof = ddof

    def score(self, saliency, density, fixations, raw):
        """See ``SaliencyMetric.score``."""
        values = tensor_metrics.normalized_scanpath_saliency(saliency, fixations, self.ddof)
        return values, _has_fixations(fixations)

    def get_config(self):
        """Returns the constructor arguments."""
        return {**super().get_config(), "ddof": self.ddof}


@keras.saving.register_keras_serializable(package="tfsal")
class KLDivergence(SaliencyMetric):
    """KL(density || saliency) in nats, MIT form with eps (``functional.kld``).

    Args:
        output: "log_density" or "map".
        name: the metric's name.
        dtype: the state's dtype.
    """

    def __init__(self, output: str = LOG_DENSITY, name: str = "kld", dtype=None):
        super().__init__(output=output, name=name, dtype=dtype)

    def score(self, saliency, density, fixations, raw):
        """See ``SaliencyMetric.score``."""
        # float32 cannot hold MATLAB's eps next to 1; it still guards the zeros.
        values = tensor_metrics.kl_divergence(
            _to_distribution(density), _to_distribution(saliency), EPS
        )
        return values, tf.ones_like(values)


@keras.saving.register_keras_serializable(package="tfsal")
class Similarity(SaliencyMetric):
    """SIM, histogram intersection of the two maps (``functional.sim``).

    Args:
        output: "log_density" or "map".
        min_max: min-max normalise before dividing by the sum (MIT) or not
            (pysaliency).
        name: the metric's name.
        dtype: the state's dtype.
    """

    def __init__(
        self, output: str = LOG_DENSITY, min_max: bool = True, name: str = "sim", dtype=None
    ):
        super().__init__(output=output, name=name, dtype=dtype)
        self.min_max = bool(min_max)

    def score(self, saliency, density, fixations, raw):
        """See ``SaliencyMetric.score``."""
        if self.min_max:
            saliency, density = _min_max(saliency), _min_max(density)
        values = tf.reduce_sum(
            tf.minimum(_to_distribution(saliency), _to_distribution(density)), axis=1
        )
        return values, tf.ones_like(values)

    def get_config(self):
        """Returns the constructor arguments."""
        return {**super().get_config(), "min_max": self.min_max}


@keras.saving.register_keras_serializable(package="tfsal")
class AUCJudd(SaliencyMetric):
    """AUC-Judd with exact tie handling (``functional.auc_judd`` with ``jitter=False``).

    Ranks the raw output (a log-density is not exponentiated, so no tie appears
    where ``exp`` would underflow). Each unfixated pixel adds the mean of the hit
    rates at the fixated thresholds around it, which is the trapezoid area of Judd's
    ROC curve.

    Args:
        output: "log_density" or "map".
        name: the metric's name.
        dtype: the state's dtype.
    """

    def __init__(self, output: str = LOG_DENSITY, name: str = "auc_judd", dtype=None):
        super().__init__(output=output, name=name, dtype=dtype)

    def score(self, saliency, density, fixations, raw):
        """See ``SaliencyMetric.score``."""
        size = tf.shape(raw)[1]
        num_fixated = tf.reduce_sum(fixations, axis=1)
        # Fixated values in ascending order after N - Nf placeholders of -inf.
        fixated_values = tf.sort(tf.where(fixations > 0, raw, -float("inf")), axis=1)
        right = tf.searchsorted(fixated_values, raw, side="right")
        above = tf.cast(size - right, "float32")  # fixated values > v
        # The largest fixated value <= v, and how many fixated values reach it.
        index = tf.maximum(right - 1, 0)
        nearest_below = tf.gather(fixated_values, index, batch_dims=1)
        reaching = tf.cast(size - tf.searchsorted(fixated_values, nearest_below), "float32")
        placeholders = tf.cast(size, "float32") - num_fixated[:, None]
        reaching = tf.where(
            tf.cast(right, "float32") <= placeholders, num_fixated[:, None], reaching
        )
        heights = tf.math.divide_no_nan(above + reaching, 2.0 * num_fixated[:, None])
        unfixated = 1.0 - fixations
        values = tf.math.divide_no_nan(
            tf.reduce_sum(heights * unfixated, axis=1), tf.reduce_sum(unfixated, axis=1)
        )
        valid = _has_fixations(fixations) * tf.cast(tf.reduce_sum(unfixated, axis=1) > 0, "float32")
        return values, valid
