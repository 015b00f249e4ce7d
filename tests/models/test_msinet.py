import keras
import numpy as np
import pytest

import tfsal.models
from tests.test_case import run_export_test, run_layer_test, run_model_saving_test
from tfsal.models.msinet import (
    CAFFE_MEAN_AS_RELEASED,
    DATASET_INPUT_SIZES,
    MinMaxNormalization,
    SpatialBroadcast,
)


@pytest.fixture(scope="module")
def model():
    return tfsal.models.get("msinet", taps=None, input_size=(32, 32))


def _images(batch=1, size=32, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch, size, size, 3)).astype("float32")


def test_registered_as_map():
    info = tfsal.models.model_info("msinet")
    assert (info.output, info.size_multiple, info.default_input_size) == ("map", 8, (240, 320))


def test_parameter_count_matches_release(model):
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 24_934_209
    assert len(model.trainable_weights) == 46


def test_caffe_means_subtracted_from_rgb_in_released_order(model):
    assert CAFFE_MEAN_AS_RELEASED == (103.939, 116.779, 123.68)
    subtract = model.get_layer("caffe_mean_subtraction")
    pixel = np.array([[[[10.0, 20.0, 30.0]]]], "float32")
    np.testing.assert_allclose(
        subtract(pixel)[0, 0, 0], [10 - 103.939, 20 - 116.779, 30 - 123.68], rtol=1e-6
    )


def test_encoder_layout(model):
    for stage in (4, 5):
        pool = model.get_layer(f"pool{stage}")
        assert pool.strides == (1, 1) and pool.padding == "same"
    for index in (1, 2, 3):
        assert model.get_layer(f"conv5_{index}").dilation_rate == (2, 2)
        assert model.get_layer(f"conv4_{index}").dilation_rate == (1, 1)
    assert [model.get_layer(f"aspp_conv1_{i}").dilation_rate[0] for i in (2, 3, 4)] == [4, 8, 12]
    assert model.get_layer("decoder_conv4").activation is keras.activations.linear


def test_taps(model):
    outputs = model(_images(batch=2))
    expected = {
        "conv3_3": (2, 8, 8, 256),
        "pool3": (2, 4, 4, 256),
        "conv4_3": (2, 4, 4, 512),
        "pool4": (2, 4, 4, 512),
        "conv5_3": (2, 4, 4, 512),
        "encoder": (2, 4, 4, 1280),
        "aspp_global": (2, 4, 4, 256),
        "aspp": (2, 4, 4, 256),
        "decoder1": (2, 8, 8, 128),
        "decoder2": (2, 16, 16, 64),
        "decoder3": (2, 32, 32, 32),
        "logits": (2, 32, 32, 1),
        "saliency": (2, 32, 32, 1),
    }
    for name, shape in expected.items():
        assert tuple(outputs[name].shape) == shape, name
    for info in model.feature_info:
        assert tuple(outputs[info.name].shape) == (
            2,
            32 // info.stride,
            32 // info.stride,
            info.channels,
        )
    # The encoder output is pool3, pool4 and pool5 side by side.
    np.testing.assert_array_equal(outputs["encoder"][..., :256], outputs["pool3"])
    np.testing.assert_array_equal(outputs["encoder"][..., 768:], outputs["pool5"])


def test_output_is_min_max_of_logits(model):
    outputs = model(_images(batch=2, seed=3))
    logits = np.asarray(outputs["logits"])
    shifted = logits - logits.min(axis=(1, 2, 3), keepdims=True)
    expected = shifted / (1e-7 + shifted.max(axis=(1, 2, 3), keepdims=True))
    np.testing.assert_allclose(outputs["saliency"], expected, atol=1e-6)


def test_dataset_input_sizes_are_multiples_of_8():
    assert DATASET_INPUT_SIZES["salicon"] == (240, 320)
    assert DATASET_INPUT_SIZES["mit1003"] == (360, 360)
    assert DATASET_INPUT_SIZES["cat2000"] == (216, 384)
    for height, width in DATASET_INPUT_SIZES.values():
        tfsal.models.check_input_size("msinet", height, width)


def test_rejects_size_not_multiple_of_8():
    with pytest.raises(ValueError, match="multiples of 8"):
        tfsal.models.get("msinet", input_size=(30, 32))


def test_legacy_resize_option(model):
    upsamplers = [model.get_layer(f"decoder_upsample{i}") for i in (1, 2, 3)]
    assert not any(layer.half_pixel_centers for layer in upsamplers)
    modern = tfsal.models.get("msinet", input_size=(32, 32), legacy_resize=False)
    assert all(modern.get_layer(f"decoder_upsample{i}").half_pixel_centers for i in (1, 2, 3))
    modern.set_weights(model.get_weights())
    images = _images(seed=5)
    legacy_map = np.asarray(model(images)["saliency"])
    modern_map = np.asarray(modern(images)["saliency"])
    assert np.abs(legacy_map - modern_map).max() > 1e-4


def test_min_max_layer():
    data = np.random.default_rng(1).normal(size=(3, 4, 5, 1)).astype("float32")
    output = np.asarray(
        run_layer_test(MinMaxNormalization, {"epsilon": 1e-7}, data, run_training_step=False)
    )
    np.testing.assert_allclose(output.min(axis=(1, 2, 3)), 0.0, atol=1e-7)
    np.testing.assert_allclose(output.max(axis=(1, 2, 3)), 1.0, atol=1e-6)
    np.testing.assert_array_equal(MinMaxNormalization()(np.full((1, 2, 2, 1), 5.0, "float32")), 0.0)
    with pytest.raises(ValueError, match="epsilon"):
        MinMaxNormalization(epsilon=-1.0)


def test_spatial_broadcast_layer():
    context = np.random.default_rng(2).normal(size=(2, 1, 1, 4)).astype("float32")
    reference = np.zeros((2, 3, 5, 7), "float32")
    output = SpatialBroadcast()([context, reference])
    assert tuple(output.shape) == (2, 3, 5, 4)
    np.testing.assert_array_equal(output, np.broadcast_to(context, (2, 3, 5, 4)))
    with pytest.raises(ValueError, match="1x1"):
        SpatialBroadcast()([np.zeros((1, 2, 2, 4), "float32"), reference])


def test_saving_round_trip(model, tmp_path):
    run_model_saving_test(model, _images(), tmp_path)


@pytest.mark.slow
def test_export_with_free_input_size(tmp_path):
    model = tfsal.models.get("msinet", taps=("aspp",))
    run_export_test(model, _images(batch=1, size=16), tmp_path, fresh_process=True)
