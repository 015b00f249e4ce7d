import json

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfsal.layers
import tfsal.models
from tests.explain.parents import SMALL_BANK, images, toy_parent
from tests.test_case import run_export_test, run_model_saving_test
from tfsal import explain
from tfsal.conventions import CONTRIBUTIONS, SALIENCY, reconstruction_key
from tfsal.explain import explainable_model as explain_model
from tfsal.explain.derive import L2_GRID

pytestmark = pytest.mark.filterwarnings("ignore:Tap .* training rows:UserWarning")


def _derive(parent=None, batches=None, **kwargs):
    data = images(8) if batches is None else batches
    train = [data[:4], data[4:]]
    kwargs.setdefault("taps", ["enc2", "enc3"])
    kwargs.setdefault("output_kind", "log_density")
    kwargs.setdefault("bank_config", SMALL_BANK)
    kwargs.setdefault("progress", False)
    return explain.derive(parent or toy_parent(), train, [data[:4]], **kwargs)


@pytest.fixture(scope="module")
def linear():
    return _derive(readout_epochs=3)


def test_any_functional_model_gets_an_explainable_model_with_named_outputs(linear):
    assert [(t.name, t.channels, t.stride) for t in linear.taps] == [("enc2", 6, 4), ("enc3", 8, 8)]
    outputs = linear.model(images(2))
    assert set(outputs) == {SALIENCY, CONTRIBUTIONS, "reconstruction_enc2", "reconstruction_enc3"}
    assert outputs[reconstruction_key("enc2")].shape == (2, 8, 8, 6)
    assert outputs[reconstruction_key("enc3")].shape == (2, 4, 4, 8)
    assert outputs[SALIENCY].shape == (2, 32, 32, 1)
    np.testing.assert_allclose(np.exp(outputs[SALIENCY]).sum(axis=(1, 2, 3)), 1.0, rtol=1e-5)
    names = explain.group_names(linear.model)
    assert len(names) == 3 * 2 * 3 + 1 == outputs[CONTRIBUTIONS].shape[-1]
    assert names[0] == "Y/scale0/orientation0" and names[-1] == explain.PRIOR_GROUP


def test_contributions_add_up_to_the_saliency_logits(linear):
    model = linear.model
    logits_model = keras.Model(model.input, model.get_layer("logits").output)
    batch = images(3, seed=7)
    total = model(batch)[CONTRIBUTIONS].numpy().sum(axis=-1, keepdims=True)
    logits = logits_model(batch).numpy()
    assert np.abs(logits).max() > 1e-2  # the readout was fitted: a test with zeros proves nothing
    np.testing.assert_allclose(total, logits, atol=1e-4)
    # And the saliency is the log-softmax of that sum.
    expected = tf.nn.log_softmax(total.reshape(3, -1)).numpy().reshape(total.shape)
    np.testing.assert_allclose(model(batch)[SALIENCY], expected, atol=1e-4)


def test_reconstructions_are_ridge_solutions_chosen_on_validation_r2(linear):
    fidelity = linear.fidelity
    for tap in ("enc2", "enc3"):
        scores = fidelity["taps"][tap]
        assert scores["l2"] in L2_GRID
        assert scores["r2"] == max(scores["r2_by_l2"].values())
        assert -1 < scores["r2"] <= 1 and 0 < scores["mean_cc"] <= 1
    # Validation R² recomputed from the model's own reconstructions of the held-out images.
    toy = toy_parent()
    parent = keras.Model(toy.input, toy.get_layer("enc3").output)
    held_out = images(8)[:4]
    activation = parent(held_out).numpy().reshape(-1, 8)
    rebuilt = linear.model(held_out)[reconstruction_key("enc3")].numpy().reshape(-1, 8)
    r2 = 1 - ((activation - rebuilt) ** 2).sum() / ((activation - activation.mean(0)) ** 2).sum()
    np.testing.assert_allclose(fidelity["taps"]["enc3"]["r2"], r2, atol=1e-4)
    assert fidelity["rows"]["enc3"] == {"train": 8 * 16, "val": 4 * 16}
    json.dumps(fidelity)  # JSON-ready


@pytest.mark.slow
def test_fitting_the_readout_brings_the_saliency_towards_the_parents():
    unfitted = _derive(readout_epochs=0)
    fitted = _derive(readout_epochs=4)
    assert unfitted.fidelity["saliency"]["cc"] == pytest.approx(0.0, abs=1e-6)  # uniform map
    assert fitted.fidelity["saliency"]["cc"] > 0.3
    assert fitted.fidelity["saliency"]["kld"] < unfitted.fidelity["saliency"]["kld"]


def test_the_explainable_model_saves_reloads_and_exports(linear, tmp_path):
    batch = images(2, seed=3)
    restored = run_model_saving_test(linear.model, batch, tmp_path, atol=1e-4)
    assert explain.group_names(restored) == explain.group_names(linear.model)
    assert set(explain.reconstruction_layers(restored)) == {"enc2", "enc3"}
    run_export_test(linear.model, batch, tmp_path, atol=1e-4)


@pytest.mark.slow
def test_the_decoder_readout_feeds_the_frozen_decoder_with_reconstructions(tmp_path):
    parent = toy_parent()
    before = [w.numpy().copy() for w in parent.get_layer("dec_logits").weights]
    derivation = _derive(parent, readout="decoder", fine_tune_epochs=1)
    outputs = derivation.model(images(2))
    assert set(outputs) == {SALIENCY, "reconstruction_enc2", "reconstruction_enc3"}
    after = [w.numpy() for w in parent.get_layer("dec_logits").weights]
    for b, a in zip(before, after, strict=True):
        np.testing.assert_array_equal(b, a)  # fine-tuning moved the reconstructions only
    with pytest.raises(ValueError, match="no contributions"):
        explain.group_names(derivation.model)
    # The decoder applied to the parent's own activations gives the parent's saliency.
    decoder = derivation.model.get_layer("toy_saliency_decoder")
    encoder = keras.Model(parent.input, [parent.get_layer(t).output for t in ("enc2", "enc3")])
    batch = images(2)
    np.testing.assert_allclose(decoder(encoder(batch)), parent(batch)[SALIENCY], atol=1e-5)
    run_model_saving_test(derivation.model, batch, tmp_path, atol=1e-4)
    run_export_test(derivation.model, batch, tmp_path, atol=1e-4)


def test_a_map_parent_gets_a_map_whose_contributions_add_up_to_it():
    derivation = _derive(output_kind="map", readout_epochs=1, taps=["enc3"])
    outputs = derivation.model(images(2))
    np.testing.assert_allclose(
        outputs[CONTRIBUTIONS].numpy().sum(-1, keepdims=True), outputs[SALIENCY], atol=1e-4
    )
    assert derivation.fidelity["output_kind"] == "map"


@pytest.mark.slow
def test_fine_tuning_keeps_the_model_linear_and_updates_the_fidelity():
    derivation = _derive(readout_epochs=1, fine_tune_epochs=2, learning_rate=0.01)
    readout = explain.tap_readouts(derivation.model)["enc3"]
    layer = readout.reconstruction
    assert derivation.fidelity["taps"]["enc3"]["r2"] != max(
        derivation.fidelity["taps"]["enc3"]["r2_by_l2"].values()
    )  # re-scored after the kernel moved
    batch = images(2)
    total = derivation.model(batch)[CONTRIBUTIONS].numpy().sum(-1)
    assert np.isfinite(total).all() and layer.kernel.shape == (18, 8)


@pytest.mark.slow
def test_fine_tuning_refines_a_fitted_readout_at_the_reconstructions_rate():
    # Restarted at the readout's rate, Adam's first steps move every readout weight
    # by about 0.05 and undo the fit (NUS: loss 0.254 -> 5.98).
    fitted = _derive(readout_epochs=1, learning_rate=0.05)
    refined = _derive(
        readout_epochs=1, fine_tune_epochs=1, learning_rate=0.05, reconstruction_learning_rate=1e-6
    )
    for tap, layer in explain.tap_readouts(refined.model).items():
        before = explain.tap_readouts(fitted.model)[tap].readout.numpy()
        assert np.abs(before).max() > 1e-3  # the readout was fitted
        np.testing.assert_allclose(layer.readout.numpy(), before, atol=1e-5)


def test_registered_parents_use_their_default_taps():
    info = tfsal.models.model_info("cmrnet")
    parent = tfsal.models.get("cmrnet", taps=info.default_taps, input_size=(32, 32))
    explain_parent = explain.check_parent(parent, (32, 32))
    assert [t.name for t in explain_parent] == ["stage1", "stage2", "stage3", "stage4"]
    assert [t.stride for t in explain_parent] == [2, 4, 8, 16]
    assert explain.check_parent(parent, (32, 32), readout="decoder")  # the taps cut the graph


def _error(match, **kwargs):
    with pytest.raises(ValueError, match=match):
        _derive(**kwargs)


def test_a_tap_the_model_lacks_is_named():
    _error("has no tap 'enc9'.*model.summary", taps=["enc2", "enc9"])


def test_a_tap_finer_than_the_image_is_refused():
    image = keras.Input((32, 32, 3))
    fine = keras.layers.UpSampling2D(2, name="too_fine")(image)
    pooled = keras.layers.AveragePooling2D(2)(keras.layers.Conv2D(1, 1)(fine))
    parent = keras.Model(image, {"saliency": pooled}, name="upsampler")
    _error("64x64 for a 32x32 image.*whole stride", parent=parent, taps=["too_fine"])


def test_an_unknown_output_kind_is_refused():
    _error("output kind of model 'toy_saliency' is unknown.*output_kind=", output_kind=None)
    _error("output_kind must be one of", output_kind="probability")


def test_too_few_images_for_the_features_warns():
    with pytest.warns(UserWarning, match="Tap 'enc3': 128 training rows .* 18 log-Gabor"):
        _derive(readout_epochs=0)


def test_one_shot_iterators_and_empty_data_are_refused():
    data = images(4)
    with pytest.raises(ValueError, match="one-shot iterator.*tf.data.Dataset or a list"):
        explain.derive(toy_parent(), iter([data]), [data], taps=["enc3"], output_kind="map")
    with pytest.raises(ValueError, match="holds no batches"):
        explain.derive(toy_parent(), [], [data], taps=["enc3"], output_kind="map")


def test_a_decoder_readout_needs_taps_that_cut_the_graph():
    _error("cut every path from the image.*readout='linear'", taps=["enc3"], readout="decoder")
    _error("readout must be one of", readout="attention")


@pytest.mark.slow
def test_tf_data_batches_with_targets_are_accepted():
    data = images(8)
    dataset = tf.data.Dataset.from_tensor_slices((data, np.zeros((8, 32, 32, 1), "float32")))
    derivation = explain.derive(
        toy_parent(),
        dataset.batch(4),
        dataset.take(4).batch(4),
        taps=["enc3"],
        output_kind="log_density",
        bank_config=SMALL_BANK,
        readout_epochs=1,
        progress=False,
    )
    assert derivation.fidelity["rows"]["enc3"]["train"] == 8 * 16


def test_context_copies_are_fitted_and_still_add_up_to_the_logits():
    derivation = _derive(readout_epochs=2, context_sigmas=(8.0,))
    readouts = explain.tap_readouts(derivation.model)
    assert {layer.context_sigmas for layer in readouts.values()} == {(2.0,), (1.0,)}  # / stride
    assert all(np.abs(layer.context_readout.numpy()).max() > 0 for layer in readouts.values())
    model = derivation.model
    batch = images(2, seed=5)
    logits = keras.Model(model.input, model.get_layer("logits").output)(batch).numpy()
    total = model(batch)[CONTRIBUTIONS].numpy().sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(total, logits, atol=1e-4)


def test_the_centre_prior_gets_the_widths_asked_for_and_fits_them():
    derivation = _derive(readout_epochs=2, prior_widths=(0.125, 0.5, 2.0))
    prior = derivation.model.get_layer("centre_prior")
    assert prior.widths == (0.125, 0.5, 2.0)
    assert prior.map_weights.shape == (3,) and np.abs(prior.map_weights.numpy()).max() > 0


def test_a_spatial_reconstruction_kernel_is_fitted_exported_and_adds_up(tmp_path):
    single = _derive(readout_epochs=1)
    spatial = _derive(readout_epochs=1, reconstruction_kernel_size=3)
    layers = explain.reconstruction_layers(spatial.model)
    assert {tuple(layer.kernel.shape) for layer in layers.values()} == {(9 * 18, 6), (9 * 18, 8)}
    # Validation R² of 3×3 against 1×1 on the same rows: the neighbours carry signal.
    for tap in ("enc2", "enc3"):
        assert spatial.fidelity["taps"][tap]["r2"] > single.fidelity["taps"][tap]["r2"]
    model = spatial.model
    batch = images(2, seed=5)
    logits = keras.Model(model.input, model.get_layer("logits").output)(batch).numpy()
    total = model(batch)[CONTRIBUTIONS].numpy().sum(axis=-1, keepdims=True)
    assert np.abs(logits).max() > 1e-2
    np.testing.assert_allclose(total, logits, atol=1e-4)
    run_model_saving_test(model, batch, tmp_path, atol=1e-4)
    run_export_test(model, batch, tmp_path, atol=1e-4)


def test_pooled_banks_compute_one_bank_and_pool_it_for_the_coarser_taps(tmp_path):
    derivation = _derive(
        readout_epochs=1,
        pooled_banks=True,
        image_normalisation=True,
        normalisation_statistics=("ratio", "excess"),
        reconstruction_kernel_size=3,
        context_sigmas=(8.0,),
    )
    model = derivation.model
    banks = [layer for layer in model.layers if isinstance(layer, tfsal.layers.LogGaborBank)]
    assert [bank.output_stride for bank in banks] == [4]
    batch = images(2, seed=5)
    features = explain_model.bank_features(model, batch)
    fine = features[4].numpy()
    pooled = fine.reshape(2, 4, 2, 4, 2, -1).mean(axis=(2, 4))
    np.testing.assert_allclose(features[8], pooled, rtol=1e-5, atol=1e-7)
    # The pooled features stand for the 1/8 bank's own (its output_stride mode is an
    # approximation of area pooling too).
    own = banks[0].__class__(**{**banks[0].get_config(), "output_stride": 8, "name": "own"})
    np.testing.assert_allclose(features[8], own(batch), rtol=0.1, atol=0.02 * fine.max())
    logits = keras.Model(model.input, model.get_layer("logits").output)(batch).numpy()
    total = model(batch)[CONTRIBUTIONS].numpy().sum(axis=-1, keepdims=True)
    assert np.abs(logits).max() > 1e-2
    np.testing.assert_allclose(total, logits, atol=1e-4)
    run_model_saving_test(model, batch, tmp_path, atol=1e-4)


def test_pooled_banks_need_strides_that_are_multiples_of_the_finest():
    taps = [explain.Tap("a", 4, 4), explain.Tap("b", 4, 6)]
    with pytest.raises(ValueError, match="multiple of the finest, 4"):
        explain.build_explainable_model(taps, pooled_banks=True, bank_config=SMALL_BANK)


def test_a_local_normalisation_takes_its_surround_in_input_pixels():
    taps = [explain.Tap("a", 4, 4), explain.Tap("b", 4, 8)]
    model = explain.build_explainable_model(
        taps,
        bank_config=SMALL_BANK,
        image_normalisation=True,
        normalisation_statistics=("excess", "local"),
        normalisation_sigma=16.0,
    )
    sigmas = {
        stride: model.get_layer(explain_model.normalisation_name(stride)).local_sigmas
        for stride in (4, 8)
    }
    assert sigmas == {4: (4.0,), 8: (2.0,)}
    several = explain.build_explainable_model(
        taps,
        bank_config=SMALL_BANK,
        image_normalisation=True,
        normalisation_statistics=("local",),
        normalisation_sigma=[16.0, 64.0],
    )
    layer = several.get_layer(explain_model.normalisation_name(8))
    assert layer.local_sigmas == (2.0, 8.0) and layer.copies == 3
    for sigmas in ([16.0, 16.0], [], 0.0):
        with pytest.raises(ValueError, match="normalisation_sigma must be one or more surround"):
            explain.build_explainable_model(
                taps,
                bank_config=SMALL_BANK,
                image_normalisation=True,
                normalisation_statistics=("local",),
                normalisation_sigma=sigmas,
            )


def test_prior_scale_weakens_the_fitted_centre_prior_and_nothing_else():
    fitted = _derive(readout_epochs=1)
    weaker = _derive(readout_epochs=1, prior_scale=0.5)
    before = fitted.model.get_layer("centre_prior").map_weights.numpy()
    assert np.abs(before).max() > 1e-3
    np.testing.assert_allclose(
        weaker.model.get_layer("centre_prior").map_weights.numpy(), 0.5 * before, rtol=1e-5
    )
    for tap, layer in explain.tap_readouts(weaker.model).items():
        expected = explain.tap_readouts(fitted.model)[tap].readout.numpy()
        np.testing.assert_allclose(layer.readout.numpy(), expected, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="prior_scale must be >= 0"):
        _derive(prior_scale=-1.0)
