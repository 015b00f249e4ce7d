"""Tests of benchmarks/tap_r2.py: spatial-context rows, row sampling, penalty choice."""

import importlib.util
from pathlib import Path

import keras
import numpy as np
import pytest

from tfsal.explain import RidgeAccumulator

_SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "tap_r2.py"
_spec = importlib.util.spec_from_file_location("tap_r2", _SCRIPT)
tap_r2 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tap_r2)


def test_context_offsets_put_the_centre_first_and_cover_the_square():
    offsets = tap_r2.context_offsets(3)
    assert offsets[0] == (0, 0)
    assert sorted(offsets) == [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    assert tap_r2.context_offsets(1) == [(0, 0)]
    assert len(tap_r2.context_offsets(5)) == 25


@pytest.mark.parametrize("size", [0, 2, -3, 1.0])
def test_context_offsets_refuse_sizes_that_are_not_odd_positive_ints(size):
    with pytest.raises(ValueError, match="odd int >= 1. Received: size="):
        tap_r2.context_offsets(size)


def test_context_rows_stack_the_neighbours_in_offset_order_and_repeat_the_edge():
    features = np.arange(2 * 3 * 4 * 2, dtype=float).reshape(2, 3, 4, 2)
    positions = np.array([[1, 2], [0, 0]])
    rows = tap_r2.context_rows(features, 3, positions)
    assert rows.shape == (2, 2, 2 * 9)
    for index, (dy, dx) in enumerate(tap_r2.context_offsets(3)):
        block = rows[:, :, 2 * index : 2 * index + 2]
        np.testing.assert_array_equal(block[:, 0], features[:, 1 + dy, 2 + dx])  # interior
        corner = features[:, max(dy, 0), max(dx, 0)]  # cells above/left of (0, 0) repeat it
        np.testing.assert_array_equal(block[:, 1], corner)
    np.testing.assert_array_equal(tap_r2.context_rows(features, 1, positions), rows[..., :2])


def test_context_rows_refuse_maps_without_a_batch_axis():
    with pytest.raises(ValueError, match=r"\(B, h, w, K\)"):
        tap_r2.context_rows(np.zeros((3, 4, 2)), 3, np.array([[0, 0]]))


def test_sample_positions_keep_small_maps_whole_and_sample_large_ones_without_repeats():
    rng = np.random.default_rng(0)
    whole = tap_r2.sample_positions(2, 3, 6, rng)
    np.testing.assert_array_equal(whole, [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]])
    sampled = tap_r2.sample_positions(10, 12, 20, rng)
    assert sampled.shape == (20, 2)
    assert len({tuple(cell) for cell in sampled}) == 20
    assert (sampled[:, 0] < 10).all() and (sampled[:, 1] < 12).all()
    again = tap_r2.sample_positions(10, 12, 20, np.random.default_rng(0))
    np.testing.assert_array_equal(
        again, tap_r2.sample_positions(10, 12, 20, np.random.default_rng(0))
    )
    with pytest.raises(ValueError, match="max_rows must be >= 1"):
        tap_r2.sample_positions(2, 2, 0, rng)


def _accumulate(features, targets, size):
    positions = tap_r2.sample_positions(*features.shape[1:3], 10_000, np.random.default_rng(0))
    x = tap_r2.context_rows(features, size, positions)
    y = targets[:, positions[:, 0], positions[:, 1]]
    accumulator = RidgeAccumulator(x.shape[-1], y.shape[-1])
    accumulator.update(x, y)
    return accumulator


def test_context_explains_a_target_that_the_cell_itself_cannot():
    # The target is the feature of the right-hand neighbour: unrelated to the cell's
    # own (independent noise), exactly linear in the 3x3 context.
    rng = np.random.default_rng(1)
    features = rng.normal(size=(6, 8, 9, 2))
    shifted = np.concatenate([features[:, :, 1:], features[:, :, -1:]], axis=2)
    targets = shifted[..., :1] - 0.5 * shifted[..., 1:]
    results = {}
    for size in (1, 3):
        train = _accumulate(features[:4], targets[:4], size)
        val = _accumulate(features[4:], targets[4:], size)
        results[size] = tap_r2.best_ridge(train, val)
    assert results[1]["r2"] < 0.1
    assert results[3]["r2"] > 0.999


def test_best_ridge_keeps_the_penalty_with_the_best_validation_r2():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 5))
    y = x @ rng.normal(size=(5, 2)) + rng.normal(size=(60, 2))
    train, val = RidgeAccumulator(5, 2), RidgeAccumulator(5, 2)
    train.update(x[:20], y[:20])
    val.update(x[20:], y[20:])
    grid = (1e-3, 1.0, 1e3)
    result = tap_r2.best_ridge(train, val, grid)
    expected = {l2: val.score(*train.solve(l2 * train.count)).r2 for l2 in grid}
    assert result["r2_by_l2"] == {str(l2): r2 for l2, r2 in expected.items()}
    assert result["l2"] == max(expected, key=expected.get)
    assert result["r2"] == expected[result["l2"]]
    assert expected[1e3] < expected[result["l2"]]  # the grid really differs


def test_markdown_table_has_one_row_per_tap_with_the_gain():
    scores = {"l2": 0.01, "r2": 0.25, "mean_cc": 0.5, "r2_by_l2": {}}
    results = {
        "stage3": {
            "stride": 8,
            "channels": 64,
            "rows_per_image": 784,
            "1x1": scores,
            "context": {**scores, "r2": 0.4, "l2": 0.1},
        }
    }
    lines = tap_r2.markdown_table(results, 3)
    assert "R² (3×3)" in lines[0]
    assert lines[2] == "| stage3 | 1/8 | 64 | 784 | 0.01 | 0.250 | 0.1 | 0.400 | +0.150 |"


@pytest.mark.slow  # builds a LogGaborBank and traces two tf.functions
def test_streamer_accumulates_sampled_rows_of_every_tap():
    image = keras.Input((32, 32, 3))
    tap = keras.layers.Conv2D(3, 3, strides=4, padding="same", name="tap")(image)
    saliency = keras.layers.Conv2D(1, 1)(keras.layers.UpSampling2D(4)(tap))
    parent = keras.Model(image, {"saliency": saliency, "tap": tap})
    images = np.random.default_rng(3).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    streamer = tap_r2.TapStreamer(parent, ["tap"], size=3, max_rows_per_image=20)
    streamer.setup(images)
    assert streamer.strides == {"tap": 4} and streamer.channels == {"tap": 3}
    accumulators = streamer.accumulate([images, images[:1]], "test")["tap"]
    assert accumulators["1x1"].count == accumulators["context"].count == 3 * 20
    features = accumulators["1x1"].num_features
    assert accumulators["context"].num_features == 9 * features


def test_r2_chart_is_an_rgb_picture_that_depends_on_the_scores():
    scores = {"l2": 0.01, "r2_by_l2": {}, "mean_cc": 0.5}
    results = {
        "a": {"stride": 8, "1x1": {**scores, "r2": 0.3}, "context": {**scores, "r2": 0.4}},
        "b": {"stride": 16, "1x1": {**scores, "r2": 0.1}, "context": {**scores, "r2": 0.15}},
    }
    picture = tap_r2.r2_chart(results, 3, "test")
    assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[-1] == 3
    results["b"]["context"]["r2"] = 0.6
    assert not np.array_equal(picture, tap_r2.r2_chart(results, 3, "test"))
