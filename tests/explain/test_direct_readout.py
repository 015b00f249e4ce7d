"""Tests of benchmarks/direct_readout.py: cell targets, the log-linear fit, the features."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from tfsal.data.targets import resize_geometry

_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "direct_readout.py"
_spec = importlib.util.spec_from_file_location("direct_readout", _SCRIPT)
direct_readout = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(direct_readout)


def test_pool_to_cells_sums_every_block_and_keeps_the_mass():
    density = np.arange(2 * 4 * 6, dtype=float).reshape(2, 4, 6)
    cells = direct_readout.pool_to_cells(density, 2)
    assert cells.shape == (2, 2, 3)
    assert cells[0, 0, 0] == density[0, :2, :2].sum()
    assert cells[1, 1, 2] == density[1, 2:, 4:].sum()
    np.testing.assert_allclose(cells.sum(axis=(1, 2)), density.sum(axis=(1, 2)))


def test_pool_to_cells_refuses_maps_that_are_not_multiples_of_the_stride():
    with pytest.raises(ValueError, match="multiples of stride=4. Received: shape="):
        direct_readout.pool_to_cells(np.zeros((6, 8)), 4)


def test_covered_cells_leave_out_only_the_letterbox_padding():
    # A 1:2 image on a 32x32 canvas fills rows 8..23, every column.
    geometry = resize_geometry((100, 200), (32, 32), "pad")
    covered = direct_readout.covered_cells(geometry, 8)
    np.testing.assert_array_equal(covered[:, 0], [False, True, True, False])
    assert covered[1:3].all()
    # Rows 7..24 (an odd content height) touch cells 0 and 3 too: they stay in.
    wider = resize_geometry((18, 32), (32, 32), "pad")
    assert wider.top == 7 and direct_readout.covered_cells(wider, 8)[:, 0].all()


def _softmax(logits):
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def test_fit_log_linear_recovers_the_weights_of_a_known_softmax():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(24, 40, 3)).astype(np.float32)
    truth = np.array([1.0, -0.5, 0.8])
    mask = np.ones((24, 40), bool)
    mask[:, :5] = False  # a letterbox: no density there, left out of the softmax
    logits = np.where(mask, features @ truth, -np.inf)
    density = _softmax(logits)
    weights, losses = direct_readout.fit_log_linear(features, density, mask, steps=300)
    np.testing.assert_allclose(weights, truth, atol=0.03)
    assert losses[0] > 0.3 and losses[-1] < 1e-3  # KLD of the uniform start, then ~0


def test_fit_log_linear_ignores_the_features_of_masked_cells():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(8, 10, 2)).astype(np.float32)
    mask = np.ones((8, 10), bool)
    mask[:, -2:] = False
    density = _softmax(np.where(mask, features @ np.array([0.7, 0.2]), -np.inf))
    weights, _ = direct_readout.fit_log_linear(features, density, mask, steps=50)
    features[:, -2:] = 1e3  # padding cells with absurd features
    again, _ = direct_readout.fit_log_linear(features, density, mask, steps=50)
    np.testing.assert_allclose(again, weights, atol=1e-5)


def test_fit_log_linear_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="features must be \\(N, cells, F\\)"):
        direct_readout.fit_log_linear(np.zeros((2, 5, 3)), np.zeros((2, 4)), np.ones((2, 4)))


def test_readout_features_are_standardised_and_upsampled_to_the_fine_grid():
    rng = np.random.default_rng(2)
    images = rng.uniform(0, 255, size=(3, 32, 64, 3)).astype(np.float32)
    reader = direct_readout.ReadoutFeatures((32, 64), strides=(8, 16))
    raw = reader.bank_features(images)
    assert raw[8].shape == (3, 4, 8, 72) and raw[16].shape == (3, 2, 4, 72)
    reader.adapt(raw)
    features = reader.assemble(raw, direct_readout.Recipe((8, 16)))
    assert features.shape == (3, 4, 8, 3 + 2 * 72)
    # Prior maps first, peaked at the centre; then the 1/8 bank, standardised on these images.
    assert features[0, 0, 0, 0] < features[0, 2, 4, 0]
    fine = features[..., 3 : 3 + 72].reshape(-1, 72)
    np.testing.assert_allclose(fine.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(fine.std(axis=0), 1.0, atol=1e-3)


def test_the_predictor_gives_a_map_at_the_image_size_from_the_prior_alone():
    reader = direct_readout.ReadoutFeatures((32, 32), strides=(8,))
    image = np.full((40, 80, 3), 128, np.uint8)  # letterboxed into rows 8..23
    predict = reader.predictor(np.array([4.0, 0.0, 0.0]), direct_readout.Recipe(()), "pad")
    saliency = predict(image)
    assert saliency.shape == (40, 80)
    # The image spans the canvas's width: its centre columns are the prior's peak.
    assert saliency[:, 0].max() < saliency[:, 40].min()
    np.testing.assert_allclose(saliency, saliency[:, ::-1], rtol=1e-5)


def test_blurred_copies_follow_the_features_and_are_smoother():
    rng = np.random.default_rng(3)
    images = rng.uniform(0, 255, size=(2, 64, 64, 3)).astype(np.float32)
    reader = direct_readout.ReadoutFeatures((64, 64), strides=(8,))
    raw = reader.bank_features(images)
    reader.adapt(raw)
    features = reader.assemble(raw, direct_readout.Recipe((8,), (8.0, 16.0)))
    assert features.shape == (2, 8, 8, 3 + 3 * 72)
    sharp, once, twice = (features[..., 3 + 72 * i : 3 + 72 * (i + 1)] for i in range(3))
    assert sharp.std() > once.std() > twice.std() > 0
    # A normalised blur keeps a map's level: the copies' means stay near the features'.
    np.testing.assert_allclose(once.mean(axis=(1, 2)), sharp.mean(axis=(1, 2)), atol=0.3)
