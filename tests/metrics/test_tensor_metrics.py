"""tfsal.metrics.tensor_metrics: the TensorFlow CC, NSS and KLD of losses and metrics."""

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from tfsal import losses
from tfsal.metrics import functional, keras_metrics, tensor_metrics


@pytest.fixture
def maps():
    rng = np.random.default_rng(3)
    saliency = rng.random((3, 7, 9)) ** 2
    density = rng.random((3, 7, 9)) ** 3
    density /= density.sum(axis=(1, 2), keepdims=True)
    fixations = (rng.random((3, 7, 9)) < 0.15).astype(np.float64)
    fixations[:, 0, 0] = 1
    return saliency, density, fixations


def _flat(values):
    return tf.constant(values.reshape(len(values), -1), tf.float32)


def test_each_score_matches_the_numpy_reference(maps):
    saliency, density, fixations = maps
    cc = tensor_metrics.correlation_coefficient(_flat(saliency), _flat(density)).numpy()
    nss = tensor_metrics.normalized_scanpath_saliency(_flat(saliency), _flat(fixations)).numpy()
    predicted = saliency / saliency.sum(axis=(1, 2), keepdims=True)
    # In float64 MATLAB's eps is representable, so the MIT form can be compared exactly.
    as_float64 = [tf.constant(v.reshape(len(v), -1)) for v in (density, predicted)]
    kld = tensor_metrics.kl_divergence(*as_float64, functional.EPS).numpy()
    exact = tensor_metrics.log_density_kl_divergence(_flat(density), _flat(np.log(predicted)))
    for index in range(len(saliency)):
        np.testing.assert_allclose(
            cc[index], functional.cc(saliency[index], density[index]), rtol=1e-5
        )
        np.testing.assert_allclose(
            nss[index], functional.nss(saliency[index], fixations[index]), rtol=1e-4, atol=1e-6
        )
        np.testing.assert_allclose(
            kld[index], functional.kld(saliency[index], density[index]), rtol=1e-4
        )
        expected = scipy.stats.entropy(density[index].ravel(), predicted[index].ravel())
        np.testing.assert_allclose(exact[index], expected, rtol=1e-4)


def test_constant_maps_score_zero_and_keep_a_finite_loss_gradient():
    constant = tf.Variable(tf.ones((2, 12)))
    density = tf.constant(np.random.default_rng(0).random((2, 12)), tf.float32)
    fixations = tf.zeros((2, 12))
    assert tensor_metrics.correlation_coefficient(constant, density).numpy().tolist() == [0, 0]
    assert tensor_metrics.normalized_scanpath_saliency(constant, fixations).numpy().tolist() == [
        0,
        0,
    ]
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(
            tensor_metrics.correlation_coefficient(constant, density, epsilon=1e-12)
            + tensor_metrics.normalized_scanpath_saliency(constant, fixations, 0, epsilon=1e-7)
        )
    assert np.isfinite(tape.gradient(value, constant).numpy()).all()


def test_losses_and_keras_metrics_share_the_implementation(monkeypatch, maps):
    saliency, density, fixations = maps
    y_true = np.stack([density, fixations], -1).astype("float32")
    y_pred = np.log(saliency / saliency.sum(axis=(1, 2), keepdims=True))[..., None]
    calls = []
    real = tensor_metrics.correlation_coefficient

    def counting(*args, **kwargs):
        calls.append(kwargs.get("epsilon"))
        return real(*args, **kwargs)

    monkeypatch.setattr(tensor_metrics, "correlation_coefficient", counting)
    loss_cc = losses.correlation_coefficient(y_true, y_pred.astype("float32")).numpy()
    metric = keras_metrics.CorrelationCoefficient()
    metric.update_state(y_true, y_pred.astype("float32"))
    assert calls == [1e-12, None]
    np.testing.assert_allclose(float(metric.result()), loss_cc.mean(), rtol=1e-5)
