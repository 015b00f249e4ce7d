"""The harness itself, on stock Keras pieces, so a broken harness fails loudly."""

import keras
import numpy as np
import pytest

from tests import test_case


def test_layer_test_passes_on_a_stock_layer():
    data = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    out = test_case.run_layer_test(
        keras.layers.Dense,
        {"units": 4, "use_bias": True},
        data,
        expected_output_shape=(2, 5, 4),
        expect_trainable_weights=2,
    )
    assert out.shape == (2, 5, 4)


def test_layer_test_catches_a_config_that_drops_an_argument():
    class Forgetful(keras.layers.Dense):
        def get_config(self):
            config = super().get_config()
            config["units"] = 1
            return config

    data = np.zeros((1, 3), "float32")
    with pytest.raises(AssertionError, match="units"):
        test_case.run_layer_test(Forgetful, {"units": 2}, data, run_training_step=False)


def test_model_saving_and_export(tmp_path):
    inputs = keras.Input((4, 4, 3))
    x = keras.layers.Conv2D(2, 3, padding="same")(inputs)
    model = keras.Model(inputs, {"saliency": x, "tap": keras.layers.ReLU()(x)}, name="tiny")
    data = np.random.default_rng(1).normal(size=(2, 4, 4, 3)).astype("float32")
    test_case.run_model_saving_test(model, data, tmp_path)
    test_case.run_export_test(model, data, tmp_path, other_batch_size=3)
