"""Tests of benchmarks/readout_sweep.py: variants, kept reconstructions, scaled logits."""

import importlib.util
from pathlib import Path

import keras
import numpy as np
import pytest

from tests.explain.parents import SMALL_BANK, images, toy_parent
from tfsal import explain
from tfsal.conventions import SALIENCY
from tfsal.explain import explainable_model
from training.fit_config import DeriveConfig

_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "readout_sweep.py"
_spec = importlib.util.spec_from_file_location("readout_sweep", _SCRIPT)
readout_sweep = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(readout_sweep)

pytestmark = pytest.mark.filterwarnings("ignore:Tap .* training rows:UserWarning")


@pytest.fixture(scope="module")
def derivation():
    data = images(8)
    return explain.derive(
        toy_parent(),
        [data[:4], data[4:]],
        [data[:4]],
        taps=["enc2", "enc3"],
        output_kind="log_density",
        bank_config=SMALL_BANK,
        readout_epochs=1,
        reconstruction_kernel_size=3,
        progress=False,
    )


def test_a_variant_reads_lists_l2_and_scales():
    name, overrides, l2, options = readout_sweep.parse_variant(
        "wide:derive.context_sigmas=[8, 16],derive.readout_epochs=25,l2.enc3=10,"
        "logit_scales=[1, 1.2],prior_scales=[0.9]"
    )
    assert name == "wide"
    assert overrides == {"context_sigmas": [8, 16], "readout_epochs": 25}
    assert l2 == {"enc3": 10.0}
    assert options == {"logit_scales": [1.0, 1.2], "prior_scales": [0.9], "keep_readout": False}
    default = {"logit_scales": [1.0], "prior_scales": [1.0], "keep_readout": False}
    assert readout_sweep.parse_variant("recipe:") == ("recipe", {}, {}, default)
    kept = readout_sweep.parse_variant("fitted:keep_readout=true,prior_scales=[0.8, 1]")[3]
    assert kept["keep_readout"] and kept["prior_scales"] == [0.8, 1.0]


@pytest.mark.parametrize(
    "text, message",
    [
        ("derive.blur_sigma=2", "needs NAME:KEY=VALUE"),
        ("k5:derive.reconstruction_kernel_size=5", "is not a readout setting"),
        ("bad:derive.blur_sigma", "is no KEY=VALUE"),
        ("kept:keep_readout=true,derive.blur_sigma=2", "takes no derive settings"),
    ],
)
def test_a_variant_that_would_change_the_reconstructions_is_refused(text, message):
    with pytest.raises(SystemExit, match=message):
        readout_sweep.parse_variant(text)


def test_a_variant_keeps_the_reconstructions_and_takes_its_readout_settings(derivation):
    # Settings the run's configuration would resolve differently (a recipe changed
    # since it was derived) do not count: the fitted model's own path does.
    derive = DeriveConfig(blur_sigma=9.0, reconstruction_kernel_size=1, pooled_banks=True)
    overrides = {"prior_widths": [0.125, 2.0], "context_sigmas": [8.0]}
    model = readout_sweep.variant_model(
        derivation.model, derivation.taps, "log_density", derive, overrides, {}
    )
    assert model.get_layer("centre_prior").widths == (0.125, 2.0)
    blurs = {layer.blur_sigma for layer in explain.tap_readouts(model).values()}
    assert blurs == {1.0, 0.5}  # the fitted 4 px at strides 4 and 8, not the 9 px above
    assert {layer.context_sigmas for layer in explain.tap_readouts(model).values()} == {
        (2.0,),
        (1.0,),
    }
    batch = images(2, seed=3)
    for tap in ("enc2", "enc3"):
        key = f"reconstruction_{tap}"
        np.testing.assert_allclose(
            model(batch)[key].numpy(), derivation.model(batch)[key].numpy(), atol=1e-5
        )
    # The readout starts from zeros, as in a derivation: a uniform density.
    density = np.exp(model(batch)[SALIENCY].numpy())
    np.testing.assert_allclose(density, 1 / density[0].size, rtol=1e-4)


def test_an_l2_variant_solves_that_reconstruction_again(derivation):
    derive = DeriveConfig()
    statistics = derivation.statistics
    model = readout_sweep.variant_model(
        derivation.model, derivation.taps, "log_density", derive, {}, {"enc3": 100.0}, statistics
    )
    layers = explain.reconstruction_layers(model)
    train = statistics["train"]["enc3"]
    weights, _ = train.solve(100.0 * train.count)
    np.testing.assert_allclose(layers["enc3"].kernel.numpy(), weights, rtol=1e-4, atol=1e-6)
    kept = explain.reconstruction_layers(derivation.model)["enc2"].kernel.numpy()
    np.testing.assert_array_equal(layers["enc2"].kernel.numpy(), kept)


def test_a_scaled_prior_multiplies_only_the_prior_maps(derivation):
    model = keras.models.clone_model(derivation.model)
    model.set_weights(derivation.model.get_weights())
    prior = model.get_layer("centre_prior")
    before, offset = prior.map_weights.numpy(), prior.offset.numpy()
    readouts = [w.numpy() for layer in explain.tap_readouts(model).values() for w in layer.weights]
    readout_sweep.scale_prior(model, 0.85)
    np.testing.assert_allclose(prior.map_weights.numpy(), 0.85 * before, rtol=1e-6)
    assert prior.offset.numpy() == offset
    after = [w.numpy() for layer in explain.tap_readouts(model).values() for w in layer.weights]
    for old, new in zip(readouts, after, strict=True):
        np.testing.assert_array_equal(old, new)


def test_scaled_logits_sharpen_the_density_by_that_factor(derivation):
    model = keras.models.clone_model(derivation.model)
    model.set_weights(derivation.model.get_weights())
    logits = keras.Model(model.input, model.get_layer("logits").output)
    batch = images(2, seed=4)
    before = logits(batch).numpy()
    readout_sweep.scale_logits(model, 1.5)
    expected = keras.ops.log_softmax(1.5 * before.reshape(2, -1), axis=-1).numpy()
    np.testing.assert_allclose(
        model(batch)[SALIENCY].numpy().reshape(2, -1), expected, rtol=1e-4, atol=1e-4
    )


def test_the_reconstruction_path_keeps_every_local_surround():
    taps = [explain.Tap("a", 4, 4), explain.Tap("b", 4, 8)]
    model = explain.build_explainable_model(
        taps,
        bank_config=SMALL_BANK,
        image_normalisation=True,
        normalisation_statistics=("excess", "local"),
        normalisation_sigma=[16.0, 64.0],
        pooled_banks=True,
    )
    path = readout_sweep.reconstruction_path(model, taps)
    assert path["normalisation_sigma"] == [16.0, 64.0]
    assert path["normalisation_statistics"] == ("excess", "local")
    rebuilt = explain.build_explainable_model(taps, **path)
    assert rebuilt.count_params() == model.count_params()  # as many copies in every kernel
    name = explainable_model.normalisation_name(8)
    assert rebuilt.get_layer(name).local_sigmas == model.get_layer(name).local_sigmas == (2.0, 8.0)
