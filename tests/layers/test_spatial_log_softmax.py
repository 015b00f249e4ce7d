import keras
import numpy as np
import pytest
import scipy.special

from tests.test_case import run_layer_test
from tfsal.layers import SpatialLogSoftmax


def test_layer_anatomy_and_normalisation():
    data = np.random.default_rng(2).normal(size=(3, 4, 5, 1)).astype("float32")
    output = run_layer_test(
        SpatialLogSoftmax, {}, data, expected_output_shape=(3, 4, 5, 1), run_training_step=False
    )
    np.testing.assert_allclose(np.exp(output).sum(axis=(1, 2, 3)), 1.0, rtol=1e-5)
    # Adding a constant to the logits leaves the density unchanged.
    np.testing.assert_allclose(SpatialLogSoftmax()(data + 7.0), output, atol=1e-5)


def test_matches_scipy_log_softmax_over_pixels_and_channels():
    data = np.random.default_rng(4).normal(size=(3, 4, 6, 2)).astype("float32")
    output = SpatialLogSoftmax()(data)
    expected = data - scipy.special.logsumexp(data, axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(output.numpy(), expected, atol=1e-6)


def test_large_logits_stay_finite():
    # exp(1000) overflows float32; the log-sum-exp must subtract the maximum first.
    data = 1000.0 * np.random.default_rng(5).normal(size=(2, 4, 6, 1)).astype("float32")
    output = SpatialLogSoftmax()(data).numpy()
    assert np.all(np.isfinite(output))
    expected = data - scipy.special.logsumexp(data, axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(np.exp(output).sum(axis=(1, 2, 3)), 1.0, rtol=1e-5)


def test_float32_maths_under_mixed_precision():
    data = np.random.default_rng(6).normal(size=(2, 5, 7, 1)).astype("float32")
    expected = SpatialLogSoftmax()(data).numpy()
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        layer = SpatialLogSoftmax()
        # float32 logits are not rounded to float16 on the way in.
        output = layer(data)
        assert layer.compute_dtype == "float32"
        assert output.dtype == "float32"
        np.testing.assert_allclose(output.numpy(), expected, atol=1e-6)
        # float16 logits (a mixed-precision model's last convolution) give float32.
        half = SpatialLogSoftmax()(data.astype("float16"))
        assert half.dtype == "float32"
        np.testing.assert_allclose(np.exp(half.numpy()).sum(axis=(1, 2, 3)), 1.0, rtol=1e-6)
        symbolic = SpatialLogSoftmax()(keras.Input(shape=(5, 7, 1), dtype="float16"))
        assert symbolic.dtype == "float32"
    finally:
        keras.config.set_dtype_policy(previous)


def test_rejects_inputs_that_are_not_maps():
    with pytest.raises(ValueError, match=r"\(batch, height, width, channels\)"):
        SpatialLogSoftmax()(np.zeros((2, 5), "float32"))


def test_registered_under_the_tfsal_package():
    assert keras.saving.get_registered_object("tfsal>SpatialLogSoftmax") is SpatialLogSoftmax
