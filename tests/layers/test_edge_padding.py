import keras
import numpy as np
import pytest

from tests.test_case import run_layer_test
from tfsal.layers import EdgePadding2D


def test_edge_padding_replicates_the_border():
    data = np.random.default_rng(3).normal(size=(2, 4, 5, 3)).astype("float32")
    output = run_layer_test(
        EdgePadding2D,
        {"padding": 3},
        data,
        expected_output_shape=(2, 10, 11, 3),
        run_training_step=False,
    )
    expected = np.pad(data, ((0, 0), (3, 3), (3, 3), (0, 0)), mode="edge")
    np.testing.assert_array_equal(output.numpy(), expected)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="padding must be an int >= 0"):
            EdgePadding2D(bad)


def test_padding_wider_than_the_map_and_zero_padding():
    data = np.random.default_rng(4).normal(size=(1, 2, 3, 1)).astype("float32")
    expected = np.pad(data, ((0, 0), (5, 5), (5, 5), (0, 0)), mode="edge")
    np.testing.assert_array_equal(EdgePadding2D(5)(data).numpy(), expected)
    np.testing.assert_array_equal(EdgePadding2D(0)(data).numpy(), data)


def test_free_height_and_width():
    inputs = keras.Input(shape=(None, None, 2))
    outputs = EdgePadding2D(2)(inputs)
    assert tuple(outputs.shape) == (None, None, None, 2)
    model = keras.Model(inputs, outputs)
    for height, width in ((3, 4), (6, 2)):
        data = np.random.default_rng(height).normal(size=(1, height, width, 2)).astype("float32")
        expected = np.pad(data, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="edge")
        np.testing.assert_array_equal(model(data), expected)


def test_registered_under_the_tfsal_package():
    assert keras.saving.get_registered_object("tfsal>EdgePadding2D") is EdgePadding2D
