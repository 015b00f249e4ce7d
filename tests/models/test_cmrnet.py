import keras
import numpy as np
import pytest

import tfsal.models
from tests.test_case import run_export_test, run_layer_test, run_model_saving_test
from tfsal.models.cmrnet import CrossConcatResidualBlock

TINY = {"widths": (4, 6, 8, 10), "blocks_per_stage": (1, 1, 1, 1)}


@pytest.fixture(scope="module")
def tiny_model():
    return tfsal.models.get("cmrnet", taps=None, **TINY)


def _images(batch=2, height=32, width=48, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch, height, width, 3)).astype("float32")


def test_registered_as_log_density():
    info = tfsal.models.model_info("cmrnet")
    assert info.output == "log_density"
    assert info.size_multiple == 16
    assert "cmrnet" in tfsal.models.list_models()


def test_block_layer_anatomy():
    data = np.random.default_rng(0).normal(size=(2, 8, 8, 6)).astype("float32")
    run_layer_test(
        CrossConcatResidualBlock,
        {"branch_channels": 4, "wide_dilation": 3, "activation": "relu"},
        data,
        expected_output_shape=(2, 8, 8, 6),
        expect_trainable_weights=10,
    )


def test_block_is_residual_with_zero_fusion():
    block = CrossConcatResidualBlock()
    data = np.random.default_rng(1).normal(size=(1, 5, 7, 4)).astype("float32")
    block(data)
    block.fuse.kernel.assign(np.zeros(block.fuse.kernel.shape, "float32"))
    np.testing.assert_allclose(block(data), data, atol=1e-6)


def test_block_branches_see_both_scales():
    block = CrossConcatResidualBlock(branch_channels=3)
    block(np.zeros((1, 9, 9, 4), "float32"))
    # The second stage takes the crosswise concatenation of both first-stage branches.
    assert block.narrow_2.kernel.shape == (3, 3, 6, 3)
    assert block.wide_2.kernel.shape == (3, 3, 6, 3)
    assert block.wide_1.dilation_rate == (2, 2)
    assert block.fuse.kernel.shape == (1, 1, 6, 4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"branch_channels": 0}, "branch_channels"), ({"wide_dilation": 1}, "wide_dilation")],
)
def test_block_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CrossConcatResidualBlock(**kwargs)


def test_default_parameter_count_is_cpu_sized():
    model = tfsal.models.get("cmrnet", input_size=(32, 32))
    assert 1_000_000 <= model.count_params() <= 4_000_000


def test_outputs_and_taps(tiny_model):
    outputs = tiny_model(_images())
    strides = {info.name: info.stride for info in tiny_model.feature_info}
    channels = {info.name: info.channels for info in tiny_model.feature_info}
    assert set(outputs) == {"saliency", *strides}
    for name in ("stem", "stage1", "stage2", "stage3", "stage4", "decoder1", "decoder3"):
        assert name in strides
    for name, tensor in outputs.items():
        if name == "saliency":
            continue
        assert tensor.shape == (2, 32 // strides[name], 48 // strides[name], channels[name])
    assert outputs["saliency"].shape == (2, 32, 48, 1)
    np.testing.assert_allclose(np.exp(outputs["saliency"]).sum(axis=(1, 2, 3)), 1.0, rtol=1e-4)


def test_colour_transform_is_a_linear_rgb_matrix(tiny_model):
    layer = tiny_model.get_layer("colour_transform")
    assert layer.kernel.shape == (1, 1, 3, 3)
    assert layer.activation is keras.activations.linear


def test_saving_round_trip(tiny_model, tmp_path):
    run_model_saving_test(tiny_model, _images(batch=1), tmp_path)


@pytest.mark.slow
def test_export_accepts_any_multiple_of_16(tiny_model, tmp_path):
    run_export_test(tiny_model, _images(batch=1), tmp_path, other_batch_size=2)
    reloaded = keras.layers.TFSMLayer(str(tmp_path / "cmrnet_savedmodel"), call_endpoint="serve")
    other_size = _images(batch=1, height=48, width=16)
    np.testing.assert_allclose(
        reloaded(other_size)["saliency"], tiny_model(other_size)["saliency"], atol=1e-5
    )


def test_weights_argument_reloads(tiny_model, tmp_path):
    path = tmp_path / "cmrnet.weights.h5"
    tiny_model.save_weights(path)
    restored = tfsal.models.get("cmrnet", taps=None, weights=str(path), **TINY)
    images = _images(batch=1)
    np.testing.assert_allclose(
        restored(images)["saliency"], tiny_model(images)["saliency"], atol=1e-5
    )


@pytest.mark.slow
def test_trains_one_step():
    model = tfsal.models.get("cmrnet", **TINY)
    images = _images(batch=2)
    target = np.full((2, 32, 48, 1), 1.0 / (32 * 48), "float32")
    model.compile(
        optimizer="adam",
        loss={"saliency": lambda y, log_p: -keras.ops.sum(y * log_p, axis=(1, 2, 3))},
    )
    history = model.fit(images, {"saliency": target}, epochs=1, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input_size": (30, 48)}, "multiples of 16"),
        ({"widths": (8, 8, 8)}, "widths"),
        ({"blocks_per_stage": (1, 0, 1, 1)}, "blocks_per_stage"),
        ({"encoder_weights": "vgg.h5"}, "encoder_weights"),
    ],
)
def test_rejects_bad_configuration(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tfsal.models.get("cmrnet", **kwargs)


def test_missing_weights_file_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.weights.h5"):
        tfsal.models.get("cmrnet", weights=tmp_path / "absent.weights.h5", **TINY)
