import numpy as np
import pytest

import tfsal.models
from tests.test_case import run_layer_test
from tfsal.models.cmrnet import GlobalContextGate

TINY = {"widths": (4, 6, 8, 10), "blocks_per_stage": (1, 1, 1, 1)}


def test_gate_layer_anatomy():
    data = np.random.default_rng(0).normal(size=(2, 6, 5, 8)).astype("float32")
    run_layer_test(
        GlobalContextGate,
        {"reduction": 2},
        data,
        expected_output_shape=(2, 6, 5, 8),
        expect_trainable_weights=4,
    )


def test_a_pixel_is_gated_by_the_rest_of_the_image():
    gate = GlobalContextGate(reduction=1)
    same_pixel = np.zeros((2, 7, 7, 3), "float32")
    same_pixel[:, 3, 3] = 1.0
    same_pixel[1, 0, :, 0] = 4.0  # only the second image has more of channel 0 elsewhere
    outputs = np.asarray(gate(same_pixel))
    # A 1x1 (or any local) layer would map the equal centre pixels to equal outputs.
    assert not np.allclose(outputs[0, 3, 3], outputs[1, 3, 3])


def test_a_zero_gate_halves_every_feature():
    gate = GlobalContextGate(reduction=2)
    data = np.random.default_rng(1).normal(size=(1, 4, 4, 6)).astype("float32")
    gate(data)
    for weight in gate.gate.weights:
        weight.assign(np.zeros(weight.shape, "float32"))
    np.testing.assert_allclose(gate(data), 0.5 * data, atol=1e-6)


def test_bad_reduction_is_refused():
    with pytest.raises(ValueError, match=r"reduction must be an int >= 1. Received: reduction=0"):
        GlobalContextGate(reduction=0)


def test_cmrnet_gates_the_chosen_stages_and_none_by_default():
    gated = tfsal.models.get("cmrnet", global_context_stages=(3, 4), **TINY)
    names = {layer.name for layer in gated.layers}
    assert {"stage3_context", "stage4_context"} <= names and "stage2_context" not in names
    plain = tfsal.models.get("cmrnet", **TINY)
    assert not [layer for layer in plain.layers if isinstance(layer, GlobalContextGate)]


def test_unknown_global_context_stage_is_refused():
    with pytest.raises(ValueError, match=r"global_context_stages must hold encoder stages 1 to 4"):
        tfsal.models.get("cmrnet", global_context_stages=(5,), **TINY)
