import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.test_case import run_layer_test
from tfsal.layers import BilinearUpsampling2D


def test_legacy_resize_matches_tf1_resize_bilinear():
    data = np.random.default_rng(0).normal(size=(2, 5, 7, 3)).astype("float32")
    output = run_layer_test(
        BilinearUpsampling2D,
        {"size": 2, "half_pixel_centers": False},
        data,
        expected_output_shape=(2, 10, 14, 3),
        run_training_step=False,
    )
    legacy = tf.compat.v1.image.resize_bilinear(data, (10, 14), half_pixel_centers=False)
    np.testing.assert_allclose(output, legacy, atol=1e-6)
    # The legacy grid samples output pixel i at input i / 2: even pixels copy the input.
    np.testing.assert_allclose(np.asarray(output)[:, ::2, ::2], data, atol=1e-6)
    modern = BilinearUpsampling2D(2, half_pixel_centers=True)(data)
    np.testing.assert_allclose(
        modern, keras.layers.UpSampling2D(2, interpolation="bilinear")(data), atol=1e-5
    )
    assert np.abs(np.asarray(modern) - np.asarray(output)).max() > 0.05


@pytest.mark.parametrize("size", [2, 3])
def test_half_pixel_grid_matches_keras_upsampling(size):
    # UNISAL and CMRNet rely on this to replace UpSampling2D (PyTorch align_corners=False).
    data = 10.0 * np.random.default_rng(size).normal(size=(2, 6, 9, 4)).astype("float32")
    output = run_layer_test(
        BilinearUpsampling2D,
        {"size": size, "half_pixel_centers": True},
        data,
        expected_output_shape=(2, 6 * size, 9 * size, 4),
        run_training_step=False,
    )
    reference = keras.layers.UpSampling2D(size, interpolation="bilinear")(data)
    np.testing.assert_allclose(output, reference, atol=1e-6)


def test_free_height_and_width():
    inputs = keras.Input(shape=(None, None, 2))
    outputs = BilinearUpsampling2D(2)(inputs)
    assert tuple(outputs.shape) == (None, None, None, 2)
    model = keras.Model(inputs, outputs)
    for height, width in ((3, 4), (5, 2)):
        data = np.random.default_rng(height).normal(size=(1, height, width, 2)).astype("float32")
        expected = tf.image.resize(data, (2 * height, 2 * width), method="bilinear")
        np.testing.assert_allclose(model(data), expected, atol=1e-6)


@pytest.mark.parametrize("size", [0, 1.5, True, "2"])
def test_rejects_bad_size(size):
    with pytest.raises(ValueError, match="size must be an int >= 1"):
        BilinearUpsampling2D(size)


def test_registered_under_the_tfsal_package():
    assert keras.saving.get_registered_object("tfsal>BilinearUpsampling2D") is BilinearUpsampling2D
