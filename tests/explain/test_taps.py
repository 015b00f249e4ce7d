import keras
import numpy as np
import pytest

import tfsal.models
from tests.explain.parents import toy_parent
from tfsal import explain
from tfsal.explain import taps as taps_lib


@pytest.mark.slow
@pytest.mark.parametrize("name", ["unisal", "msinet"])
def test_registered_default_taps_cut_every_family_into_encoder_and_decoder(name):
    info = tfsal.models.model_info(name)
    size = (64, 64)
    parent = tfsal.models.get(name, taps=info.default_taps, input_size=size)
    measured = explain.check_parent(parent, size, readout="decoder")
    assert [tap.name for tap in measured] == list(info.default_taps)
    expected = {f.name: f.stride for f in parent.feature_info}
    assert {tap.name: tap.stride for tap in measured} == {
        tap: expected[tap] for tap in info.default_taps
    }


def test_taps_are_output_keys_or_layer_names_and_strides_come_from_shapes():
    parent = toy_parent()
    tensors = taps_lib.tap_tensors(parent, ["enc1", "enc3"])
    assert tuple(tensors["enc1"].shape) == (None, 16, 16, 6)
    tapped = taps_lib.tapped_model(parent, ["enc1", "enc3"])
    outputs = tapped(np.zeros((2, 32, 32, 3), "float32"))
    measured = taps_lib.measure_taps(outputs, (2, 32, 32, 3), ["enc1", "enc3"])
    assert [(t.stride, t.channels) for t in measured] == [(2, 6), (8, 8)]
    # A dict-output key (how the registered models expose taps) works the same way.
    keyed = keras.Model(
        parent.input, {"saliency": parent.output["saliency"], "deep": tensors["enc3"]}
    )
    assert taps_lib.tap_tensors(keyed, ["deep"])["deep"] is tensors["enc3"]


def test_unregistered_parents_need_taps_and_an_output_kind():
    with pytest.raises(ValueError, match="not a registered model with default taps.*taps="):
        taps_lib.default_taps(toy_parent())
    assert taps_lib.output_kind(toy_parent(), "map") == "map"


def test_bad_parents_are_named():
    image = keras.Input((32, 32, 3))
    conv = keras.layers.Conv2D(1, 3, padding="same", name="conv")
    twice = keras.layers.Add()([conv(image), conv(image)])
    with pytest.raises(ValueError, match="dict output without 'saliency'"):
        taps_lib.tapped_model(keras.Model(image, {"map": twice}), ["conv"])
    with pytest.raises(ValueError, match="called 2 times"):
        taps_lib.tap_tensors(keras.Model(image, twice), ["conv"])
    flat = keras.layers.GlobalAveragePooling2D(name="flat")(twice)
    with pytest.raises(ValueError, match="activation maps"):
        taps_lib.tap_tensors(keras.Model(image, flat), ["flat"])
    with pytest.raises(ValueError, match="'saliency' is the parent's output"):
        taps_lib.tap_tensors(toy_parent(), ["saliency"])
    with pytest.raises(ValueError, match="cropped"):
        taps_lib.measure_taps({"t": np.zeros((1, 5, 8, 2))}, (1, 32, 32, 3), ["t"])
