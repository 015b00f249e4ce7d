import keras
import numpy as np
import pytest

from tests.test_case import run_export_test, run_layer_test, run_model_saving_test
from tfsal.explain import fit_ridge
from tfsal.layers import LinearReconstruction, LogGaborBank


def _features(shape=(4, 6, 8, 12), seed=0):
    # Heavy-tailed positive features spanning orders of magnitude, like pooled magnitudes.
    rng = np.random.default_rng(seed)
    return (rng.lognormal(size=shape) * np.logspace(-3, 1, shape[-1])).astype("float32")


def test_layer_anatomy():
    run_layer_test(
        LinearReconstruction,
        dict(units=5, non_negative=True, l1=1e-3, l2=1e-2, feature_grid=(1, 3, 4)),
        _features(),
        expected_output_shape=(4, 6, 8, 5),
        expect_trainable_weights=2,
    )


def test_scaling_is_median_log1p_standardisation():
    features = _features()
    layer = LinearReconstruction(units=2)
    layer.adapt(features)
    rows = features.reshape(-1, 12).astype("float64")
    compressed = np.log1p(rows / np.median(rows, axis=0))
    expected = (compressed - compressed.mean(0)) / compressed.std(0)
    scaled = keras.ops.convert_to_numpy(layer.scale_features(features)).reshape(-1, 12)
    np.testing.assert_allclose(scaled, expected, rtol=1e-4, atol=1e-4)
    assert len(layer.non_trainable_weights) == 3


def test_fit_ridge_recovers_a_linear_map():
    features = _features(shape=(16, 6, 8, 12))
    layer = LinearReconstruction(units=3, feature_grid=(1, 3, 4))
    layer.adapt(features)
    rng = np.random.default_rng(1)
    true_kernel, true_bias = rng.standard_normal((12, 3)), rng.standard_normal(3)
    scaled = keras.ops.convert_to_numpy(layer.scale_features(features))
    targets = scaled @ true_kernel + true_bias
    batches = [(features[i : i + 4], targets[i : i + 4]) for i in range(0, 16, 4)]
    accumulator = fit_ridge(layer, batches, l2=0.0)
    assert accumulator.count == 16 * 6 * 8
    np.testing.assert_allclose(layer.kernel.numpy(), true_kernel, atol=1e-3)
    np.testing.assert_allclose(layer(features), targets, atol=1e-3)
    by_feature = layer.weights_by_feature()
    assert by_feature.shape == (3, 1, 3, 4)
    np.testing.assert_allclose(by_feature[2, 0, 1, 3], layer.kernel.numpy()[1 * 4 + 3, 2])


def test_weights_by_feature_has_every_copys_weights_without_their_residuals():
    # Two copies of (1 colour x 2 scales x 2 orientations + 1 residual): 10 channels.
    layer = LinearReconstruction(units=3, feature_grid=(1, 2, 2), feature_copies=2)
    layer(np.zeros((1, 2, 2, 10), "float32"))
    kernel = np.arange(30, dtype="float32").reshape(10, 3)
    layer.kernel.assign(kernel)
    weights = layer.weights_by_feature()
    assert weights.shape == (3, 2, 1, 2, 2)
    np.testing.assert_array_equal(weights[:, 0].reshape(3, 4), kernel[0:4].T)
    np.testing.assert_array_equal(weights[:, 1].reshape(3, 4), kernel[5:9].T)  # 4 is a residual
    assert LinearReconstruction(units=3, feature_grid=(1, 2, 2)).feature_copies == 1


def test_non_negative_fit_is_clipped():
    features = _features()
    layer = LinearReconstruction(units=2, non_negative=True)
    layer.adapt(features)
    targets = -keras.ops.convert_to_numpy(layer.scale_features(features))[..., :2]
    fit_ridge(layer, [(features, targets)], l2=0.1)
    assert (layer.kernel.numpy() >= 0).all()


def test_fits_on_log_gabor_features_and_exports_with_its_statistics(tmp_path):
    images = np.random.default_rng(2).random((3, 32, 32, 3)).astype("float32") * 255
    bank = LogGaborBank(num_scales=2, num_orientations=4, output_stride=8, lowpass_residual=True)
    features = bank(images)
    layer = LinearReconstruction(units=4, feature_grid=(3, 2, 4))
    layer.adapt(features)
    targets = np.random.default_rng(3).random((3, 4, 4, 4)).astype("float32")
    fit_ridge(layer, [(features, targets)], l2=1.0)
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, layer(bank(inputs)), name="reconstruction")
    restored = run_model_saving_test(model, images, tmp_path, atol=1e-4)
    reconstruction = restored.layers[-1]
    np.testing.assert_allclose(reconstruction.feature_median.numpy(), layer.feature_median.numpy())
    run_export_test(model, images, tmp_path, atol=1e-4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(units=0), "units must be an int >= 1. Received: units=0"),
        (dict(units=2, l1=-1.0), "l1 must be >= 0"),
        (dict(units=2, l2=-1.0), "l2 must be >= 0"),
        (dict(units=2, feature_grid=(3, 4)), "feature_grid must be three ints"),
        (dict(units=2, kernel_size=2), "kernel_size must be an odd int >= 1. Received: kernel"),
        (dict(units=2, kernel_size=0), "kernel_size must be an odd int >= 1"),
        (dict(units=2, feature_copies=0), "feature_copies must be an int >= 1. Received"),
    ],
)
def test_invalid_parameters_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LinearReconstruction(**kwargs)


def test_misuse_is_named():
    with pytest.raises(ValueError, match="feature_grid=None"):
        LinearReconstruction(units=2).weights_by_feature()
    with pytest.raises(ValueError, match="needs at least 24 feature channels"):
        LinearReconstruction(units=2, feature_grid=(1, 4, 6))(np.zeros((1, 2, 2, 12), "float32"))
    with pytest.raises(ValueError, match="in each of feature_copies=2 equal blocks"):
        LinearReconstruction(units=2, feature_grid=(1, 2, 2), feature_copies=2)(
            np.zeros((1, 2, 2, 9), "float32")
        )
    with pytest.raises(ValueError, match="no batches"):
        fit_ridge(LinearReconstruction(units=2), [])
    with pytest.raises(ValueError, match=r"kernel_size=3 reads neighbourhoods of \(B, h, w, K\)"):
        LinearReconstruction(units=2, kernel_size=3)(np.zeros((5, 12), "float32"))


def _neighbourhood_reference(scaled, size):
    """The k×k neighbourhood rows by explicit indexing (edge cells repeated for k = 3)."""
    radius = size // 2
    height, width = scaled.shape[1:3]
    blocks = []
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            rows = np.clip(np.arange(height) + dy, 0, height - 1)
            cols = np.clip(np.arange(width) + dx, 0, width - 1)
            blocks.append(scaled[:, rows][:, :, cols])
    return np.concatenate(blocks, axis=-1)


def test_kernel_size_reads_the_neighbourhood_as_a_convolution():
    features = _features()
    run_layer_test(
        LinearReconstruction,
        dict(units=5, feature_grid=(1, 3, 4), kernel_size=3),
        features,
        expected_output_shape=(4, 6, 8, 5),
        expect_trainable_weights=2,
    )
    layer = LinearReconstruction(units=5, kernel_size=3)
    layer.adapt(features)
    assert layer.kernel.shape == (9 * 12, 5)
    layer.kernel.assign(np.random.default_rng(1).standard_normal((108, 5)))
    layer.bias.assign(np.arange(5.0))
    scaled = keras.ops.convert_to_numpy(layer.scale_features(features))
    rows = keras.ops.convert_to_numpy(layer.kernel_inputs(features))
    np.testing.assert_allclose(rows, _neighbourhood_reference(scaled, 3), atol=1e-6)
    expected = rows @ layer.kernel.numpy() + layer.bias.numpy()
    np.testing.assert_allclose(layer(features), expected, rtol=1e-4, atol=1e-4)
    # The per-feature split of a projection adds up to it exactly.
    vector = np.random.default_rng(2).standard_normal(5).astype("float32")
    terms = keras.ops.convert_to_numpy(layer.feature_terms(scaled, vector))
    assert terms.shape == features.shape
    np.testing.assert_allclose(
        terms.sum(-1) + layer.bias.numpy() @ vector, expected @ vector, rtol=1e-4, atol=1e-4
    )
    # weights_by_feature adds up every cell's weight of a feature.
    layer = LinearReconstruction(units=5, feature_grid=(1, 3, 4), kernel_size=3)
    layer.build(features.shape)
    layer.kernel.assign(np.tile(np.eye(12, 5), (9, 1)))
    np.testing.assert_allclose(layer.weights_by_feature()[0, 0, 0, 0], 9.0)


def test_fit_ridge_recovers_a_spatial_linear_map_only_with_its_kernel_size():
    features = _features(shape=(16, 6, 8, 12))
    truth = LinearReconstruction(units=3, kernel_size=3)
    truth.adapt(features)
    truth.kernel.assign(np.random.default_rng(3).standard_normal((108, 3)))
    targets = truth(features)
    fitted = {}
    for size in (1, 3):
        layer = LinearReconstruction(units=3, kernel_size=size)
        layer.adapt(features)
        fit_ridge(layer, [(features, targets)], l2=1e-6)
        residual = np.asarray(layer(features)) - np.asarray(targets)
        fitted[size] = float((residual**2).mean() / np.var(targets))
    assert fitted[3] < 1e-6 < 0.1 < fitted[1]


@pytest.mark.parametrize("kernel_size", [1, 3])
def test_project_is_the_reconstruction_times_the_vectors(kernel_size):
    features = _features()
    layer = LinearReconstruction(5, kernel_size=kernel_size)
    layer.adapt(features)
    rng = np.random.default_rng(3)
    layer.kernel.assign(rng.normal(size=layer.kernel.shape).astype("float32"))
    layer.bias.assign(rng.normal(size=5).astype("float32"))
    vectors = rng.normal(size=(5, 2)).astype("float32")
    scaled = layer.scale_features(features)
    expected = keras.ops.convert_to_numpy(layer.linear_map(scaled)) @ vectors
    np.testing.assert_allclose(layer.project(scaled, vectors), expected, rtol=1e-4, atol=1e-4)
