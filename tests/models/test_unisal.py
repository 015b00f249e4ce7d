import keras
import numpy as np
import pytest

import tfsal.models
from tests.test_case import run_layer_test
from tfsal.layers import BilinearUpsampling2D, SpatialLogSoftmax
from tfsal.models.unisal import (
    FEATURE_INFO,
    GaussianPriorMaps,
    encoder_layers,
    unisal_input_size,
)
from tfsal.models.unisal.blocks import GaussianSmoothingInitializer, gaussian_smoothing_kernel
from tfsal.models.unisal.layers import manual_gaussian_parameters

SIZE = (64, 96)


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return tfsal.models.get("unisal", input_size=SIZE, taps=None)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 255, (2, *SIZE, 3)).astype("float32")


@pytest.fixture(scope="module")
def outputs(model, images):
    return {key: value.numpy() for key, value in model(images, training=False).items()}


def test_parameter_count_of_the_image_path(model):
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert trainable == 3_189_122
    assert non_trainable == 43_488  # BatchNorm running means and variances
    encoder = [w for layer in encoder_layers(model) for w in layer.trainable_weights]
    assert sum(int(np.prod(w.shape)) for w in encoder) == 2_223_872


def test_tap_shapes_at_the_released_input_size():
    full = tfsal.models.get("unisal", taps=None)
    shapes = {name: tuple(tensor.shape[1:]) for name, tensor in full.output.items()}
    assert shapes["saliency"] == (288, 384, 1)
    assert shapes["feat_4x"] == (36, 48, 64)
    assert shapes["feat_2x"] == (18, 24, 160)
    assert shapes["bottleneck"] == (9, 12, 1280)
    assert shapes["post_cnn"] == (9, 12, 256)
    assert shapes["upsampling_2"] == (18, 24, 128)
    assert shapes["post_upsampling_2"] == (36, 48, 64)
    for info in FEATURE_INFO:
        assert shapes[info.name] == (288 // info.stride, 384 // info.stride, info.channels)


def test_output_is_a_log_density(outputs):
    saliency = outputs["saliency"]
    assert saliency.shape == (2, *SIZE, 1)
    np.testing.assert_allclose(np.exp(saliency).sum(axis=(1, 2, 3)), 1.0, rtol=1e-5)


def test_target_size_resizes_before_the_log_softmax(images):
    model = tfsal.models.get("unisal", input_size=SIZE, target_size=(48, 80))
    saliency = model(images)["saliency"].numpy()
    assert saliency.shape == (2, 48, 80, 1)
    np.testing.assert_allclose(np.exp(saliency).sum(axis=(1, 2, 3)), 1.0, rtol=1e-5)


def test_stem_uses_pytorch_padding(model, images, outputs):
    """conv3x3 stride 2 padding 1 on each side (not TF's "same"), BN eps 1e-5, ReLU6."""
    normalised = (images / 255.0 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    padded = np.pad(normalised, ((0, 0), (1, 1), (1, 1), (0, 0)))
    kernel = model.get_layer("stem_conv").kernel.numpy()
    height, width = SIZE[0] // 2, SIZE[1] // 2
    conv = np.zeros((2, height, width, kernel.shape[-1]))
    for dy in range(3):
        for dx in range(3):
            patch = padded[:, dy : dy + 2 * height : 2, dx : dx + 2 * width : 2]
            conv += patch @ kernel[dy, dx]
    bn = model.get_layer("stem_bn")
    scale = bn.gamma.numpy() / np.sqrt(bn.moving_variance.numpy() + 1e-5)
    expected = np.clip((conv - bn.moving_mean.numpy()) * scale + bn.beta.numpy(), 0, 6)
    np.testing.assert_allclose(outputs["stem"], expected, atol=1e-4)
    assert bn.epsilon == 1e-5


def test_every_batch_norm_uses_pytorch_epsilon_and_relus_are_relu6(model):
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    relus = [layer for layer in model.layers if isinstance(layer, keras.layers.ReLU)]
    assert len(norms) == 52 + 2 + 4 + 6
    assert all(layer.epsilon == 1e-5 for layer in norms)
    assert relus and all(float(layer.max_value) == 6.0 for layer in relus)


def test_skip_taps_are_taken_before_the_stride_trick(model, images):
    probe = keras.Model(
        model.input,
        [
            model.get_layer("block_7_project_bn").output,
            model.get_layer("block_7_subsample").output,
            model.get_layer("block_14_project_bn").output,
            model.get_layer("block_14_subsample").output,
        ],
    )
    feat_4x, after_7, feat_2x, after_14 = (x.numpy() for x in probe(images))
    assert feat_4x.shape[1:3] == (SIZE[0] // 8, SIZE[1] // 8)
    np.testing.assert_array_equal(after_7, feat_4x[:, ::2, ::2])
    assert feat_2x.shape[1:3] == (SIZE[0] // 16, SIZE[1] // 16)
    np.testing.assert_array_equal(after_14, feat_2x[:, ::2, ::2])


def test_decoder_uses_both_skip_branches(model):
    assert model.get_layer("concat_2x").input[1] is model.get_layer("skip_2x_reduction_bn").output
    assert model.get_layer("concat_4x").input[1] is model.get_layer("skip_4x_reduction_bn").output
    assert model.get_layer("bottleneck_with_priors").output.shape[-1] == 1280 + 16
    assert model.get_layer("upsampling_8x").interpolation == "nearest"
    # Bilinear x2 on the half-pixel grid (PyTorch align_corners=False), exportable with a
    # free input size.
    for name in ("upsampling_1", "upsampling_2_resize"):
        layer = model.get_layer(name)
        assert isinstance(layer, BilinearUpsampling2D) and layer.half_pixel_centers
    assert isinstance(model.get_layer("log_density"), SpatialLogSoftmax)


def test_normalisation_inside_the_model(model, images):
    normalise = model.get_layer("imagenet_normalization")
    expected = (images / 255.0 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    np.testing.assert_allclose(normalise(images).numpy(), expected, atol=1e-5)


def test_smoothing_starts_as_the_documented_gaussian(model):
    kernel = model.get_layer("smoothing").kernel.numpy()
    assert kernel.shape == (41, 41, 1, 1)
    np.testing.assert_allclose(kernel, gaussian_smoothing_kernel(41, -2.0))
    np.testing.assert_allclose(kernel.sum(), 1.0, rtol=1e-6)
    profile = kernel[:, :, 0, 0].sum(axis=1)
    offsets = np.arange(41) - 20
    sigma = np.sqrt((profile * offsets**2).sum())
    assert sigma == pytest.approx(40 * np.exp(-2.0), rel=0.01)  # about 5.4 px
    with pytest.raises(ValueError, match="odd"):
        GaussianSmoothingInitializer()((40, 40, 1, 1))


def test_gaussian_prior_maps_follow_unisal_formula():
    parameters = manual_gaussian_parameters()
    assert parameters.shape == (16, 2, 2)
    layer = GaussianPriorMaps()
    maps = layer(np.zeros((1, 5, 9, 3), "float32")).numpy()[0]
    rows, cols = np.linspace(0, 1, 5), np.linspace(0, 1, 9)
    for index in (0, 4, 9, 12, 15):
        (mu_y, log_std_y), (mu_x, log_std_x) = parameters[index]
        expected = 6.0 * np.outer(
            np.exp(-(((rows - mu_y) / np.exp(log_std_y)) ** 2) / 2),
            np.exp(-(((cols - mu_x) / np.exp(log_std_x)) ** 2) / 2),
        )
        np.testing.assert_allclose(maps[:, :, index], expected, rtol=1e-5, atol=1e-6)
    # The centred map peaks at 6 in the middle; map 0 peaks at the upper left quarter.
    assert maps[2, 4, 15] == pytest.approx(6.0)
    assert np.unravel_index(maps[:, :, 0].argmax(), (5, 9)) == (1, 2)


def test_gaussian_prior_layer_anatomy():
    run_layer_test(
        GaussianPriorMaps,
        {"scale": 6.0},
        np.zeros((2, 3, 4, 5), "float32"),
        expected_output_shape=(2, 3, 4, 16),
        expect_trainable_weights=1,
        run_training_step=True,
    )
    with pytest.raises(ValueError, match="scale must be > 0"):
        GaussianPriorMaps(scale=0)


@pytest.mark.parametrize(
    "image_size, input_size",
    [
        ((768, 1024), (288, 384)),
        ((1024, 768), (384, 288)),
        ((1080, 1920), (256, 416)),
        ((683, 1024), (288, 416)),
        ((1024, 1024), (320, 320)),
        ((480, 640), (288, 384)),
    ],
)
def test_input_size_rule_worked_values(image_size, input_size):
    assert unisal_input_size(image_size) == input_size


def test_input_size_rule_for_mit1003_training():
    assert unisal_input_size((1024, 1024), training=True) == (288, 384)
    assert unisal_input_size((1080, 1920), training=True) == (256, 416)
    assert unisal_input_size((1024, 683), training=True) == (416, 288)
    with pytest.raises(ValueError, match="image_size must be"):
        unisal_input_size((0, 10))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"input_size": (100, 128)}, "multiples of 32. Received: 100x128"),
        ({"input_size": (96, 0)}, "positive integer sides"),
        ({"input_size": "288x384"}, "input_size must be"),
        ({"target_size": (48,)}, "target_size must be"),
        ({"skip_dropout": 1.0}, "skip_dropout must be in"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        tfsal.models.get("unisal", **kwargs)
