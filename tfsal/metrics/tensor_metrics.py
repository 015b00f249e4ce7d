"""CC, NSS and KLD per image on TensorFlow tensors: one implementation for two users.

The training losses (``tfsal.losses``) and the Keras metric classes
(``tfsal.metrics.keras_metrics``) both score ``(batch, pixels)`` tensors with these
functions; ``tfsal.metrics.functional`` stays the numpy reference they are tested
against. Each function returns ``(batch,)`` float32.

The callers differ only in how they guard degenerate maps, so each function takes
``epsilon``: ``None`` (metrics) makes a constant map score 0 through
``divide_no_nan``; a small positive value (losses) is added to the denominator
instead, which keeps the gradient of a constant map finite where ``divide_no_nan``
would pass ``0 · inf`` back through the square root.
"""

import tensorflow as tf


def _divide(numerator, denominator, epsilon: float | None):
    if epsilon is None:
        return tf.math.divide_no_nan(numerator, denominator)
    return numerator / (denominator + epsilon)


def standardise(values, ddof: int = 0, epsilon: float | None = None):
    """Returns each row minus its mean, divided by its standard deviation.

    Args:
        values: ``(batch, pixels)``.
        ddof: delta degrees of freedom of the standard deviation (MIT 1, NumPy 0).
        epsilon: see the module docstring.
    """
    centred = values - tf.reduce_mean(values, axis=1, keepdims=True)
    size = tf.cast(tf.shape(values)[1], values.dtype)
    spread = tf.sqrt(tf.reduce_sum(tf.square(centred), axis=1, keepdims=True) / (size - ddof))
    return _divide(centred, spread, epsilon)


def correlation_coefficient(first, second, epsilon: float | None = None):
    """Pearson's correlation of each pair of rows (``functional.cc``).

    Args:
        first: ``(batch, pixels)``, e.g. the predicted map.
        second: ``(batch, pixels)``, e.g. the ground-truth density.
        epsilon: see the module docstring.

    Returns:
        ``(batch,)`` in [-1, 1]; 0 when a row is constant.
    """
    centred_first = first - tf.reduce_mean(first, axis=1, keepdims=True)
    centred_second = second - tf.reduce_mean(second, axis=1, keepdims=True)
    covariance = tf.reduce_sum(centred_first * centred_second, axis=1)
    norms = tf.sqrt(
        tf.reduce_sum(tf.square(centred_first), axis=1)
        * tf.reduce_sum(tf.square(centred_second), axis=1)
    )
    return _divide(covariance, norms, epsilon)


def normalized_scanpath_saliency(saliency, fixations, ddof: int = 1, epsilon: float | None = None):
    """The standardised map averaged over the fixated pixels (``functional.nss``).

    Args:
        saliency: ``(batch, pixels)`` map.
        fixations: ``(batch, pixels)`` 0/1 fixation map.
        ddof: delta degrees of freedom of the standard deviation (MIT 1).
        epsilon: see the module docstring.

    Returns:
        ``(batch,)``; 0 for an image without fixations.
    """
    standardised = standardise(saliency, ddof, epsilon)
    total = tf.reduce_sum(standardised * fixations, axis=1)
    return tf.math.divide_no_nan(total, tf.reduce_sum(fixations, axis=1))


def kl_divergence(target, predicted, epsilon: float):
    """Regularised KL(target ‖ predicted): ``sum t · log(eps + t / (eps + p))``.

    The MIT benchmark's form (``functional.kld``) and MSI-Net's loss, which differ
    only in ``epsilon``. Both rows must already be distributions (sum to 1).

    Args:
        target: ``(batch, pixels)`` ground-truth distribution.
        predicted: ``(batch, pixels)`` predicted distribution.
        epsilon: the regulariser inside the logarithm and the division.
    """
    return tf.reduce_sum(target * tf.math.log(epsilon + target / (epsilon + predicted)), axis=1)


def log_density_kl_divergence(target, log_predicted):
    """Exact KL(target ‖ p) from ``log p``: ``sum t · (log t − log p)``, ``0 · log 0 = 0``.

    Args:
        target: ``(batch, pixels)`` ground-truth distribution.
        log_predicted: ``(batch, pixels)`` log of the predicted distribution.
    """
    # log of a clamped density: the clamp only touches pixels where target == 0,
    # whose term is multiplied by 0 anyway, and keeps log(0) out of the graph.
    log_target = tf.math.log(tf.maximum(target, 1e-30))
    return tf.reduce_sum(target * (log_target - log_predicted), axis=1)
