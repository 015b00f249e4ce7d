import keras
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from tfsal import losses


def _target(density, fixations):
    return np.stack([density, fixations], axis=-1)[None].astype("float32")


@pytest.fixture
def example():
    rng = np.random.default_rng(0)
    density = rng.random((6, 8)) ** 3
    density /= density.sum()
    fixations = np.zeros((6, 8))
    fixations[1, 2] = fixations[4, 5] = fixations[3, 3] = 1
    prediction = rng.random((6, 8)) + 0.05
    prediction /= prediction.sum()
    return density, fixations, prediction


def test_kl_divergence_of_log_density_matches_scipy(example):
    density, fixations, prediction = example
    y_pred = np.log(prediction)[None, ..., None].astype("float32")
    actual = losses.kl_divergence(_target(density, fixations), y_pred, "log_density")
    expected = scipy.stats.entropy(density.ravel(), prediction.ravel())
    np.testing.assert_allclose(actual.numpy(), [expected], rtol=1e-4)


def test_kl_divergence_is_zero_for_a_perfect_prediction_with_empty_pixels(example):
    density, fixations, _ = example
    density[0, :] = 0
    density /= density.sum()
    # log(0) pixels of the prediction sit where the ground truth is 0: 0·log 0 = 0.
    y_pred = np.log(np.maximum(density, 1e-30))[None, ..., None].astype("float32")
    actual = losses.kl_divergence(_target(density, fixations), y_pred)
    np.testing.assert_allclose(actual.numpy(), [0.0], atol=1e-5)


def test_map_kl_divergence_matches_msinet_formula(example):
    density, fixations, prediction = example
    saliency_map = prediction / prediction.max()
    eps = 1e-7
    normalised = saliency_map / saliency_map.sum()
    expected = np.sum(density * np.log(eps + density / (eps + normalised)))
    loss = losses.MapKLDivergence()
    actual = loss(_target(density, fixations), saliency_map[None, ..., None].astype("float32"))
    np.testing.assert_allclose(float(actual), expected, rtol=1e-4)


def test_nss_and_cc_match_hand_computation(example):
    density, fixations, prediction = example
    y_true = _target(density, fixations)
    y_pred = np.log(prediction)[None, ..., None].astype("float32")
    standardised = (prediction - prediction.mean()) / prediction.std()
    expected_nss = standardised[fixations > 0].mean()
    expected_cc = np.corrcoef(prediction.ravel(), density.ravel())[0, 1]
    nss = losses.normalized_scanpath_saliency(y_true, y_pred).numpy()
    cc = losses.correlation_coefficient(y_true, y_pred).numpy()
    np.testing.assert_allclose(nss, [expected_nss], rtol=1e-4)
    np.testing.assert_allclose(cc, [expected_cc], rtol=1e-4)
    # A map and its log-density agree: CC is computed on the density either way.
    map_cc = losses.correlation_coefficient(y_true, prediction[None, ..., None] * 7.0, "map")
    np.testing.assert_allclose(map_cc.numpy(), [expected_cc], rtol=1e-4)


def test_log_density_loss_combines_paper_weights(example):
    density, fixations, prediction = example
    y_true = _target(density, fixations)
    y_pred = np.log(prediction)[None, ..., None].astype("float32")
    kld = losses.kl_divergence(y_true, y_pred).numpy()[0]
    nss = losses.normalized_scanpath_saliency(y_true, y_pred).numpy()[0]
    cc = losses.correlation_coefficient(y_true, y_pred).numpy()[0]
    np.testing.assert_allclose(
        float(losses.LogDensityLoss()(y_true, y_pred)), kld - 0.1 * nss - 0.1 * cc, rtol=1e-5
    )
    kld_only = losses.LogDensityLoss(nss_weight=0, cc_weight=0)
    np.testing.assert_allclose(float(kld_only(y_true, y_pred)), kld, rtol=1e-5)


@pytest.mark.parametrize("output", ["log_density", "map"])
def test_losses_stay_finite_without_fixations(output):
    y_true = np.zeros((2, 5, 7, 2), "float32")
    y_true[0, ..., 0] = 1 / 35  # a uniform density but no fixations
    y_pred = tf.Variable(np.zeros((2, 5, 7, 1), "float32"))  # constant maps too
    loss = losses.loss_for_output(output)
    with tf.GradientTape() as tape:
        value = loss(y_true, y_pred)
    gradient = tape.gradient(value, y_pred)
    assert np.isfinite(float(value))
    assert np.all(np.isfinite(gradient.numpy()))
    np.testing.assert_array_equal(losses.normalized_scanpath_saliency(y_true, y_pred), [0, 0])


@pytest.mark.parametrize(
    "loss", [losses.LogDensityLoss(kld_weight=2.0, cc_weight=0.3), losses.MapKLDivergence(1e-6)]
)
def test_losses_serialise_round_trip(loss):
    revived = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(revived) is type(loss)
    assert revived.get_config() == loss.get_config()


def test_loss_fits_a_tiny_model():
    rng = np.random.default_rng(1)
    images = rng.random((4, 8, 8, 3)).astype("float32")
    target = np.zeros((4, 8, 8, 2), "float32")
    target[:, 2:4, 2:4, 0] = 0.25
    target[:, 3, 3, 1] = 1
    inputs = keras.Input((8, 8, 3))
    logits = keras.layers.Conv2D(1, 3, padding="same")(inputs)
    model = keras.Model(inputs, logits)
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss=losses.LogDensityLoss())
    history = model.fit(images, target, epochs=20, batch_size=4, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (lambda: losses.LogDensityLoss(nss_weight=-1), "nss_weight must be >= 0"),
        (lambda: losses.LogDensityLoss(0, 0, 0), "At least one"),
        (lambda: losses.MapKLDivergence(epsilon=0), "epsilon must be > 0"),
        (lambda: losses.loss_for_output("probability"), "output must be one of"),
    ],
)
def test_bad_arguments_raise_clear_errors(factory, message):
    with pytest.raises(ValueError, match=message):
        factory()


def test_a_target_without_fixation_channel_is_rejected():
    with pytest.raises(ValueError, match=r"\(batch, height, width, 2\)"):
        losses.LogDensityLoss()(np.zeros((1, 4, 4, 1), "float32"), np.zeros((1, 4, 4, 1)))
