import numpy as np
import pytest

from tests.test_case import run_layer_test
from tfsal.explain import CentrePrior, FeatureContributions, TapReadout
from tfsal.explain.tap_readout import gaussian_kernel_1d, normalised_blur


def _features(shape=(2, 5, 6, 18), seed=0):
    return np.random.default_rng(seed).lognormal(size=shape).astype("float32")


def test_tap_readout_anatomy_and_exact_split():
    features = _features()
    reconstruction, logits, contributions = run_layer_test(
        TapReadout,
        dict(units=4, feature_grid=(3, 2, 3), feature_scaling=True, blur_sigma=1.5),
        features,
        expected_output_shape=((2, 5, 6, 4), (2, 5, 6, 1), (2, 5, 6, 19)),
        expect_trainable_weights=3,  # kernel, bias, readout
    )
    layer = TapReadout(units=4, feature_grid=(3, 2, 3), blur_sigma=1.5)
    layer(features)
    rng = np.random.default_rng(1)
    layer.readout.assign(rng.standard_normal(4))
    layer.reconstruction.bias.assign(rng.standard_normal(4))
    reconstruction, logits, contributions = (x.numpy() for x in layer(features))
    np.testing.assert_allclose(reconstruction, layer.reconstruction(features), atol=1e-5)
    np.testing.assert_allclose(contributions.sum(-1, keepdims=True), logits, atol=1e-4)
    # The last channel is the constant b . v.
    expected_constant = float(layer.reconstruction.bias.numpy() @ layer.readout.numpy())
    np.testing.assert_allclose(contributions[..., -1], expected_constant, rtol=1e-5)


def test_a_spatial_reconstruction_still_splits_exactly_by_feature():
    features = _features()
    run_layer_test(
        TapReadout,
        dict(units=4, feature_grid=(3, 2, 3), kernel_size=3, context_sigmas=(2.0,)),
        features,
        expected_output_shape=((2, 5, 6, 4), (2, 5, 6, 1), (2, 5, 6, 19)),
        expect_trainable_weights=4,  # kernel, bias, readout, context readout
    )
    layer = TapReadout(units=4, feature_grid=(3, 2, 3), kernel_size=3, context_sigmas=(2.0,))
    layer(features)
    rng = np.random.default_rng(1)
    for weight in (layer.readout, layer.context_readout, layer.reconstruction.bias):
        weight.assign(rng.standard_normal(weight.shape))
    assert layer.reconstruction.kernel.shape == (9 * 18, 4)
    reconstruction, logits, contributions = (x.numpy() for x in layer(features))
    np.testing.assert_allclose(reconstruction, layer.reconstruction(features), atol=1e-5)
    np.testing.assert_allclose(contributions.sum(-1, keepdims=True), logits, atol=1e-4)
    # The neighbours count: a feature changed at one cell moves the logits next to it.
    changed = features.copy()
    changed[:, 2, 3, :] *= 5.0
    moved = np.abs(layer(changed)[0].numpy() - reconstruction).max(axis=(0, 3))
    assert moved[2, 4] > 1e-3 and moved[2, 3] > 1e-3 and moved[4, 0] == 0


def test_normalised_blur_keeps_constants_and_smooths():
    maps = np.zeros((1, 9, 9, 2), "float32")
    maps[0, 4, 4, 0] = 1.0
    maps[..., 1] = 3.0
    blurred = normalised_blur(maps, 1.0).numpy()
    np.testing.assert_allclose(blurred[..., 1], 3.0, rtol=1e-6)  # also at the borders
    assert blurred[0, 4, 4, 0] < 0.2 and blurred[0, 4, 5, 0] > 0.05
    # Mass is kept up to the border pixels that the normalisation lifts.
    np.testing.assert_allclose(blurred[..., 0].sum(), 1.0, rtol=1e-2)
    np.testing.assert_array_equal(normalised_blur(maps, 0.0), maps)
    tiny = normalised_blur(np.ones((1, 1, 2, 1), "float32"), 4.0).numpy()  # smaller than kernel
    np.testing.assert_allclose(tiny, 1.0, rtol=1e-6)
    assert abs(sum(gaussian_kernel_1d(2.0)) - 1) < 1e-12


def test_centre_prior_anatomy_and_shape():
    images = np.zeros((2, 8, 12, 3), "float32")
    run_layer_test(
        CentrePrior,
        dict(widths=(0.3, 0.9)),
        images,
        expected_output_shape=(2, 8, 12, 1),
        expect_trainable_weights=2,
        # The harness's loss (mean output)^2 has a zero gradient at the zero start.
        run_training_step=False,
    )
    import tensorflow as tf

    prior = CentrePrior(widths=(0.3, 0.9))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum((prior(images) - 1.0) ** 2)
    assert all(np.abs(g.numpy()).max() > 0 for g in tape.gradient(loss, prior.trainable_weights))
    prior = CentrePrior(widths=(0.5,))
    prior(images)
    prior.map_weights.assign([2.0])
    values = prior(images).numpy()[0, ..., 0]
    assert values[3:5, 5:7].min() > values[0, 0] and values[0, 0] == pytest.approx(
        2 * np.exp(-2 / (2 * 0.25))
    )


def test_feature_contributions_sum_taps_and_add_the_prior_to_its_group():
    # Takes a list of inputs, which the single-input layer harness does not cover.
    layer = FeatureContributions(["a", "b", "prior"])
    taps = [np.ones((1, 2, 2, 3), "float32"), 2 * np.ones((1, 2, 2, 3), "float32")]
    prior = 5 * np.ones((1, 2, 2, 1), "float32")
    out = layer([*taps, prior]).numpy()
    np.testing.assert_allclose(out[0, 0, 0], [3, 3, 8])
    assert FeatureContributions.from_config(layer.get_config()).group_names == ["a", "b", "prior"]
    with pytest.raises(ValueError, match="3 group names for 4 contribution channels"):
        FeatureContributions(["a", "b", "prior"])([np.ones((1, 2, 2, 4), "float32"), prior])


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: TapReadout(units=2, blur_sigma=-1), "blur_sigma must be >= 0"),
        (lambda: CentrePrior(widths=()), "widths must be one or more values > 0"),
        (lambda: CentrePrior(widths=(0.5, 0)), "widths must be one or more values > 0"),
        (lambda: FeatureContributions(["a", "b"]), "then 'prior'"),
        (lambda: FeatureContributions(["a", "a", "prior"]), "must be unique"),
    ],
)
def test_invalid_arguments_are_named(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_tap_readout_context_copies_add_up_and_widen():
    features = _features(shape=(2, 9, 10, 18))
    run_layer_test(
        TapReadout,
        dict(units=4, feature_grid=(3, 2, 3), blur_sigma=0.5, context_sigmas=(1.0, 3.0)),
        features,
        expected_output_shape=((2, 9, 10, 4), (2, 9, 10, 1), (2, 9, 10, 19)),
        expect_trainable_weights=4,  # kernel, bias, readout, context_readout
    )
    layer = TapReadout(units=4, feature_grid=(3, 2, 3), blur_sigma=0.5, context_sigmas=(1.0, 3.0))
    layer(features)
    rng = np.random.default_rng(2)
    layer.reconstruction.kernel.assign(rng.standard_normal((18, 4)))
    layer.reconstruction.bias.assign(rng.standard_normal(4))
    layer.context_readout.assign(rng.standard_normal((4, 2)))
    reconstruction, logits, contributions = (x.numpy() for x in layer(features))
    # The readout vector is zero, so the logits are the two context copies alone.
    expected = sum(
        normalised_blur(reconstruction @ layer.context_readout.numpy()[:, [j]], sigma).numpy()
        for j, sigma in enumerate((1.0, 3.0))
    )
    np.testing.assert_allclose(logits, expected, atol=1e-4)
    np.testing.assert_allclose(contributions.sum(-1, keepdims=True), logits, atol=1e-4)
    assert layer.readout_weights() == [layer.readout, layer.context_readout]
    assert TapReadout.from_config(layer.get_config()).context_sigmas == (1.0, 3.0)
    with pytest.raises(ValueError, match="context_sigmas must all be > 0"):
        TapReadout(units=2, context_sigmas=(2.0, 0.0))
