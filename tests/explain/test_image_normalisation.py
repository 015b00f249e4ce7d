"""Per-image normalisation of the log-Gabor magnitudes and its place in the model."""

import re

import keras
import numpy as np
import pytest

from tests.explain.parents import derive_toy, images
from tests.test_case import run_export_test, run_layer_test, run_model_saving_test
from tfsal import explain
from tfsal.conventions import CONTRIBUTIONS, SALIENCY
from tfsal.explain import FeatureContributions, ImageNormalisation
from tfsal.explain.contributions import FoldCopies
from tfsal.explain.explainable_model import normalisation_name

pytestmark = pytest.mark.filterwarnings("ignore:Tap .* training rows:UserWarning")


def test_every_channel_is_divided_by_its_mean_magnitude_over_the_image():
    features = np.zeros((2, 4, 5, 3), "float32")
    features[0, ..., 0] = 2.0  # constant: normalised to 1 everywhere
    features[0, 1, 2, 1] = 20.0  # one item: 20 / (20 / 20 pixels) = 20 where it is
    features[1, ..., 2] = np.arange(20, dtype="float32").reshape(4, 5) - 5.0  # signed
    both = run_layer_test(
        ImageNormalisation,
        dict(),
        features,
        expected_output_shape=(2, 4, 5, 6),
        expect_trainable_weights=0,
        run_training_step=False,  # nothing to train
    )
    both = np.asarray(both)
    np.testing.assert_array_equal(both[..., :3], features)  # the raw copy comes first
    normalised = both[..., 3:]
    np.testing.assert_allclose(normalised[0, ..., 0], 1.0, rtol=1e-6)
    assert normalised[0, 1, 2, 1] == pytest.approx(20.0) and normalised[0, 0, 0, 1] == 0
    mean_magnitude = np.abs(features[1, ..., 2]).mean()
    np.testing.assert_allclose(normalised[1, ..., 2], features[1, ..., 2] / mean_magnitude, 1e-5)
    # A blank channel stays zero (no 0 / 0), and each image has its own means.
    np.testing.assert_array_equal(normalised[1, ..., 0], 0.0)
    alone = ImageNormalisation(keep_raw=False)(features).numpy()
    np.testing.assert_allclose(alone, normalised, rtol=1e-6)
    assert ImageNormalisation(keep_raw=False).copies == 1


def test_the_same_item_stands_out_only_where_it_is_rare():
    # One channel drives every item (common), another only the singleton (rare): the
    # raw responses are equal at the singleton, the normalised ones are not.
    features = np.zeros((1, 8, 8, 2), "float32")
    for row, column in [(1, 1), (1, 5), (5, 1), (5, 5)]:
        features[0, row, column, 0] = 1.0
    features[0, 5, 5, 1] = 1.0
    normalised = ImageNormalisation(keep_raw=False)(features).numpy()[0, 5, 5]
    assert features[0, 5, 5, 0] == features[0, 5, 5, 1]
    assert normalised[1] == pytest.approx(4 * normalised[0])


def test_the_excess_copy_is_each_channels_energy_beyond_its_share_in_the_image():
    # Two pixels, two channels: image means (2, 1), so the shares are (2/3, 1/3) of
    # the image's energy 3. Pixel 0 holds (3, 1) of its energy 4, where the usual
    # mix is (8/3, 4/3): 1/3 too much in channel 0. Pixel 1 holds (1, 1) of 2 where
    # (4/3, 2/3) is usual: 1/3 too much in channel 1. Both over the image's energy 3.
    features = np.array([[[[3.0, 1.0], [1.0, -1.0]]]], "float32")  # signed: magnitudes count
    excess = run_layer_test(
        ImageNormalisation,
        dict(keep_raw=False, statistics=["excess"]),
        features,
        expected_output_shape=(1, 1, 2, 2),
        expect_trainable_weights=0,
        run_training_step=False,
    )
    np.testing.assert_allclose(np.asarray(excess)[0, 0], [[1 / 9, 0], [0, 1 / 9]], atol=1e-6)
    # Blocks come in the order asked for, after the raw channels.
    all_three = ImageNormalisation(statistics=("ratio", "excess"))(features).numpy()
    assert ImageNormalisation(statistics=("ratio", "excess")).copies == 3
    np.testing.assert_array_equal(all_three[..., :2], features)
    np.testing.assert_allclose(all_three[..., 2:4], features / [2.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(all_three[..., 4:], np.asarray(excess), atol=1e-6)


def test_the_excess_copy_marks_the_odd_item_in_whichever_direction_it_departs():
    # Three channels (orientations). Every distractor drives them as (1, 2, 1), the
    # singleton as (1, 1, 2): one channel gains, one loses. The excess copy is about
    # zero at every distractor, zero on the blank background, and positive at the
    # singleton in the channel it gains only.
    features = np.zeros((1, 6, 6, 3), "float32")
    for row, column in [(0, 0), (0, 3), (3, 0), (3, 3), (0, 5), (5, 0)]:
        features[0, row, column] = (1, 2, 1)
    features[0, 5, 5] = (1, 1, 2)
    excess = ImageNormalisation(keep_raw=False, statistics=("excess",))(features).numpy()[0]
    assert excess[5, 5, 2] > 0 and excess[5, 5, 0] == excess[5, 5, 1] == 0
    distractors = features[0].sum(-1) > 0
    distractors[5, 5] = False
    # Nearly the image's mix is theirs (a seventh of it is the singleton's).
    assert excess[distractors].max() < 0.2 * excess[5, 5, 2]
    assert excess[features[0].sum(-1) == 0].max() == 0
    # It reads the image's mix, not its contrast.
    brighter = ImageNormalisation(keep_raw=False, statistics=("excess",))(10 * features)
    np.testing.assert_allclose(brighter.numpy()[0], excess, rtol=1e-5, atol=1e-7)


def test_the_local_copy_divides_each_channel_by_its_surround():
    # A constant channel is 1 everywhere (its surround is itself); a spot stands out
    # from its surround by more than the same spot in a busy neighbourhood.
    features = np.ones((1, 9, 9, 2), "float32")
    features[0, :, :, 1] = 0.1
    features[0, 4, 4, 1] = 1.0  # a lone spot in channel 1
    busy = features.copy()
    busy[0, 3:6, 3:6, 1] = 1.0  # the same spot among equals
    local = run_layer_test(
        ImageNormalisation,
        dict(keep_raw=False, statistics=["local"], local_sigmas=[1.5]),
        features,
        expected_output_shape=(1, 9, 9, 2),
        expect_trainable_weights=0,
        run_training_step=False,
    )
    local = np.asarray(local)[0]
    np.testing.assert_allclose(local[..., 0], 1.0, rtol=1e-5)
    crowded = ImageNormalisation(keep_raw=False, statistics=("local",), local_sigmas=1.5)(busy)
    assert local[4, 4, 1] > 2 * crowded.numpy()[0, 4, 4, 1] > 2
    # Contrast-free, like the other copies; and the surround's width is saved.
    brighter = ImageNormalisation(keep_raw=False, statistics=("local",), local_sigmas=1.5)(
        10 * features
    )
    np.testing.assert_allclose(brighter.numpy()[0], local, rtol=1e-5)
    config = ImageNormalisation(statistics=("local",), local_sigmas=1.5).get_config()
    assert config["local_sigmas"] == [1.5] and "local_sigma" not in config
    with pytest.raises(ValueError, match="local_sigmas must be one or more surround widths > 0"):
        ImageNormalisation(statistics=("local",), local_sigmas=0)


def test_several_surrounds_give_one_local_copy_each_in_their_order():
    # A 5×5 patch on a dim background: against a surround of half a cell the patch's
    # centre is its own surround (about 1), against one of 4 cells it stands out.
    # One surround sees pop-out at its own scale only.
    features = np.full((1, 15, 15, 2), 0.1, "float32")
    features[0, 5:10, 5:10, 1] = 1.0
    layer_args = dict(statistics=["ratio", "local", "excess"], local_sigmas=[0.5, 4.0])
    layer = ImageNormalisation(**layer_args)
    assert layer.copies == 5  # raw, ratio, two local, excess
    both = run_layer_test(
        ImageNormalisation,
        layer_args,
        features,
        expected_output_shape=(1, 15, 15, 10),
        expect_trainable_weights=0,
        run_training_step=False,
    )
    blocks = np.split(np.asarray(both), 5, axis=-1)

    def alone(**kwargs):
        return ImageNormalisation(keep_raw=False, **kwargs)(features).numpy()

    np.testing.assert_array_equal(blocks[0], features)
    np.testing.assert_allclose(blocks[1], alone(statistics=("ratio",)), rtol=1e-6)
    np.testing.assert_allclose(blocks[2], alone(statistics=("local",), local_sigmas=0.5), 1e-6)
    np.testing.assert_allclose(blocks[3], alone(statistics=("local",), local_sigmas=4.0), 1e-6)
    np.testing.assert_allclose(blocks[4], alone(statistics=("excess",)), rtol=1e-6, atol=1e-7)
    narrow, wide = blocks[2][0, 7, 7, 1], blocks[3][0, 7, 7, 1]
    assert narrow == pytest.approx(1.0, abs=0.01) and wide > 2.0
    # Without "local" the surrounds make no copies.
    assert ImageNormalisation(statistics=("ratio",), local_sigmas=(1.0, 2.0)).copies == 2


def test_a_layer_saved_with_one_local_sigma_still_loads():
    # Models saved before local_sigmas existed hold the single key local_sigma.
    layer = ImageNormalisation(statistics=("local",), local_sigmas=(2.5,), name="norm")
    serialized = keras.saving.serialize_keras_object(layer)
    config = serialized["config"]
    config["local_sigma"] = config.pop("local_sigmas")[0]
    restored = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(restored, ImageNormalisation) and restored.local_sigmas == (2.5,)
    features = np.random.default_rng(0).random((1, 6, 6, 3)).astype("float32")
    np.testing.assert_array_equal(restored(features).numpy(), layer(features).numpy())
    assert restored.get_config()["local_sigmas"] == [2.5]


@pytest.mark.parametrize(
    "sigmas, message",
    [
        ((), "local_sigmas must be one or more surround widths"),
        ((2.0, 2.0), "each once. Received: local_sigmas=(2.0, 2.0)"),
        ((2.0, -1.0), "widths > 0"),
        ((True,), "widths > 0"),
        (("wide",), "widths > 0"),
        ("wide", "Received: local_sigmas='wide'"),
        ({2.0}, "Received: local_sigmas={2.0}"),
    ],
)
def test_bad_surrounds_are_refused_by_name(sigmas, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ImageNormalisation(statistics=("local",), local_sigmas=sigmas)


def test_only_one_of_local_sigmas_and_local_sigma_is_taken():
    with pytest.raises(ValueError, match="Pass local_sigmas or the older local_sigma, not both"):
        ImageNormalisation(statistics=("local",), local_sigmas=(2.0,), local_sigma=2.0)


def test_bad_arguments_and_inputs_are_named():
    with pytest.raises(ValueError, match="keep_raw must be True or False"):
        ImageNormalisation(keep_raw="yes")
    for statistics in ((), ("ratio", "ratio"), ("mean",)):
        with pytest.raises(ValueError, match=r"statistics must name one or more of"):
            ImageNormalisation(statistics=statistics)
    with pytest.raises(ValueError, match=r"\(batch, height, width, channels\)"):
        ImageNormalisation()(np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match="copies must be an int >= 1"):
        FeatureContributions(["a", "prior"], copies=0)


def test_feature_contributions_fold_the_copies_of_a_feature_into_its_group():
    layer = FeatureContributions(["a", "b", "prior"], copies=2)
    tap = np.array([1, 2, 10, 20, 100], "float32").reshape(1, 1, 1, 5)  # a, b, a', b', const
    prior = np.full((1, 1, 1, 1), 5.0, "float32")
    np.testing.assert_allclose(layer([tap, tap, prior]).numpy()[0, 0, 0], [22, 44, 205])
    restored = FeatureContributions.from_config(layer.get_config())
    assert restored.copies == 2 and restored.group_names == ["a", "b", "prior"]
    with pytest.raises(
        ValueError,
        match=r"3 group names for 3 contribution channels of a tap \(with copies=2 they need 5\)",
    ):
        FeatureContributions(["a", "b", "prior"], copies=2)([tap[..., :3], prior])


@pytest.fixture(scope="module")
def normalised():
    return derive_toy(image_normalisation=True)


@pytest.fixture(scope="module")
def with_excess():
    return derive_toy(image_normalisation=True, normalisation_statistics=("ratio", "excess"))


def test_a_normalised_derivation_keeps_one_group_per_feature_and_exact_contributions(normalised):
    model = normalised.model
    names = explain.group_names(model)
    assert len(names) == 3 * 2 * 3 + 1  # grouped by (colour, scale, orientation) as without
    for tap, layer in explain.reconstruction_layers(model).items():
        assert layer.kernel.shape[0] == 2 * 18, tap  # the raw and the normalised copy
    batch = images(3, seed=5)
    outputs = model(batch)
    assert outputs[CONTRIBUTIONS].shape == (3, 32, 32, len(names))
    logits = keras.Model(model.input, model.get_layer("logits").output)(batch).numpy()
    assert np.abs(logits).max() > 1e-2  # fitted, so the sum is a real check
    total = outputs[CONTRIBUTIONS].numpy().sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(total, logits, atol=1e-4)
    # The normalised copy carries weight: the derivation uses it.
    kernel = explain.reconstruction_layers(model)["enc2"].kernel.numpy()
    assert np.abs(kernel[18:]).max() > 1e-3


def test_an_excess_copy_is_one_more_block_in_every_feature_group(with_excess, tmp_path):
    model = with_excess.model
    assert len(explain.group_names(model)) == 3 * 2 * 3 + 1
    for tap, layer in explain.reconstruction_layers(model).items():
        assert layer.kernel.shape[0] == 3 * 18, tap  # raw, ratio, excess
        assert layer.weights_by_feature().shape == (layer.units, 3, 3, 2, 3)
    kernel = explain.reconstruction_layers(model)["enc2"].kernel.numpy()
    assert np.abs(kernel[36:]).max() > 1e-3  # the excess copy is read
    restored = _contributions_sum_to_logits_and_reload(model, tmp_path)
    layer = restored.get_layer(normalisation_name(4))
    assert layer.statistics == ("ratio", "excess")


def test_local_copies_at_two_surrounds_keep_the_groups_and_exact_contributions(tmp_path):
    derivation = derive_toy(
        image_normalisation=True,
        normalisation_statistics=("ratio", "local"),
        normalisation_sigma=(4.0, 16.0),
    )
    model = derivation.model
    assert len(explain.group_names(model)) == 3 * 2 * 3 + 1  # still one group per feature
    for tap, layer in explain.reconstruction_layers(model).items():
        assert layer.feature_copies == 4, tap  # raw, ratio, local at 4 px, local at 16 px
        assert layer.weights_by_feature().shape == (layer.units, 4, 3, 2, 3)
    kernel = explain.reconstruction_layers(model)["enc2"].kernel.numpy()
    assert np.abs(kernel[54:]).max() > 1e-3  # the wider surround's copy is read
    restored = _contributions_sum_to_logits_and_reload(model, tmp_path)
    assert restored.get_layer(normalisation_name(4)).local_sigmas == (1.0, 4.0)


def test_weights_by_feature_reports_both_copies_of_a_normalised_model(normalised):
    for layer in explain.reconstruction_layers(normalised.model).values():
        assert layer.feature_copies == 2
        kernel, units = layer.kernel.numpy(), layer.units
        weights = layer.weights_by_feature()
        assert weights.shape == (units, 2, 3, 2, 3)  # (units, copy, colour, scale, orientation)
        np.testing.assert_array_equal(weights[:, 0].reshape(units, 18), kernel[:18].T)
        np.testing.assert_array_equal(weights[:, 1].reshape(units, 18), kernel[18:].T)
        assert type(layer).from_config(layer.get_config()).feature_copies == 2


def test_a_normalised_explainable_model_saves_reloads_and_exports(normalised, tmp_path):
    batch = images(2, seed=3)
    restored = run_model_saving_test(normalised.model, batch, tmp_path, atol=1e-4)
    assert explain.group_names(restored) == explain.group_names(normalised.model)
    run_export_test(normalised.model, batch, tmp_path, atol=1e-4)
    assert restored(batch)[SALIENCY].shape == (2, 32, 32, 1)


def test_the_report_counts_both_copies_of_a_feature_in_its_group():
    from tfsal.explain.report import tap_importance

    names = [f"{c}/scale0/orientation{o}" for c in ("Y", "U") for o in (0, 1)]
    readout = explain.TapReadout(units=1, feature_grid=(2, 1, 2), feature_scaling=False)
    scaled = np.random.default_rng(0).standard_normal((2, 4, 4, 8)).astype("float32")
    readout(scaled)
    kernel = np.zeros((8, 1), "float32")
    kernel[4 + 0, 0] = 1.0  # the activation is the normalised copy of Y/orientation0
    readout.reconstruction.kernel.assign(kernel)
    importance = tap_importance(readout.reconstruction, scaled, scaled[..., 4:5], names)
    assert importance["colour"]["Y"]["weight_share"] == pytest.approx(1.0)
    assert importance["colour"]["Y"]["r2_drop"] > 0.99  # removing Y removes its copy too
    assert importance["colour"]["U"]["r2_drop"] == pytest.approx(0.0, abs=1e-6)
    assert importance["orientation"]["orientation 0"]["r2_drop"] > 0.99


def test_fold_copies_before_the_upsampling_equals_folding_after_it():
    rng = np.random.default_rng(0)
    tap = rng.normal(size=(2, 3, 4, 3 * 5 + 1)).astype("float32")
    folded = run_layer_test(
        FoldCopies,
        dict(copies=3),
        tap,
        expected_output_shape=(2, 3, 4, 6),
        expect_trainable_weights=0,
        run_training_step=False,
    )
    prior = np.zeros((2, 3, 4, 1), "float32")
    names = [f"g{i}" for i in range(5)] + ["prior"]
    after = FeatureContributions(names, copies=3)([tap, prior]).numpy()
    before = FeatureContributions(names)([np.asarray(folded), prior]).numpy()
    np.testing.assert_allclose(before, after, rtol=1e-6)
    with pytest.raises(ValueError, match=r"copies · F \+ 1 channels"):
        FoldCopies(3)(tap[..., :-1])
    with pytest.raises(ValueError, match="copies must be an int >= 1"):
        FoldCopies(0)


def _contributions_sum_to_logits_and_reload(model, tmp_path):
    """Checks the contributions add up to the logits; returns the model saved and reloaded."""
    batch = images(3, seed=5)
    outputs = model(batch)
    logits = keras.Model(model.input, model.get_layer("logits").output)(batch).numpy()
    assert np.abs(logits).max() > 1e-2
    total = outputs[CONTRIBUTIONS].numpy().sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(total, logits, atol=1e-4)
    return run_model_saving_test(model, batch[:2], tmp_path, atol=1e-4)
