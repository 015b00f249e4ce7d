import numpy as np
import pytest

from tfsal.explain import RidgeAccumulator


def _data(rows=500, features=6, targets=3, seed=0, offset=0.0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, features)) + offset
    y = x @ rng.standard_normal((features, targets)) + rng.standard_normal(targets)
    return x, y + 0.1 * rng.standard_normal((rows, targets))


def _reference(x, y, l2):
    """Ridge with an unpenalised bias via numpy.linalg.lstsq on the augmented system."""
    mean_x, mean_y = x.mean(0), y.mean(0)
    design = np.vstack([x - mean_x, np.sqrt(l2) * np.eye(x.shape[1])])
    response = np.vstack([y - mean_y, np.zeros((x.shape[1], y.shape[1]))])
    weights = np.linalg.lstsq(design, response, rcond=None)[0]
    return weights, mean_y - mean_x @ weights


@pytest.mark.parametrize("l2", [0.0, 3.0])
def test_streamed_solution_matches_lstsq(l2):
    x, y = _data()
    accumulator = RidgeAccumulator(6, 3)
    for start in range(0, len(x), 64):  # batches of unequal size
        accumulator.update(x[start : start + 64], y[start : start + 64])
    weights, bias = accumulator.solve(l2)
    expected_weights, expected_bias = _reference(x, y, l2)
    np.testing.assert_allclose(weights, expected_weights, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(bias, expected_bias, rtol=1e-9, atol=1e-10)
    assert accumulator.count == len(x)


def test_images_flatten_to_rows_and_large_offsets_stay_accurate():
    x, y = _data(rows=4 * 5 * 6, offset=1e6)
    accumulator = RidgeAccumulator(6, 3)
    accumulator.update(x.reshape(4, 5, 6, 6)[:2], y.reshape(4, 5, 6, 3)[:2])
    accumulator.update(x.reshape(4, 5, 6, 6)[2:], y.reshape(4, 5, 6, 3)[2:])
    weights, bias = accumulator.solve(0.0)
    expected_weights, expected_bias = _reference(x, y, 0.0)
    np.testing.assert_allclose(weights, expected_weights, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(x @ weights + bias, x @ expected_weights + expected_bias, atol=1e-4)


def test_merging_shards_equals_one_pass():
    x, y = _data(seed=1)
    whole, first, second = (RidgeAccumulator(6, 3) for _ in range(3))
    whole.update(x, y)
    first.update(x[:200], y[:200])
    second.update(x[200:] + 0.0, y[200:])
    first.merge(second)
    for a, b in zip(first.solve(0.5), whole.solve(0.5), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)


def test_without_intercept_matches_lstsq():
    x, y = _data(seed=2)
    accumulator = RidgeAccumulator(6, 3, fit_intercept=False)
    accumulator.update(x, y)
    weights, bias = accumulator.solve()
    np.testing.assert_allclose(weights, np.linalg.lstsq(x, y, rcond=None)[0], rtol=1e-9)
    assert not bias.any()


def test_rank_deficient_features_give_the_minimum_norm_solution():
    x, y = _data(seed=3)
    x = np.hstack([x, x[:, :1]])  # a duplicated column
    accumulator = RidgeAccumulator(7, 3)
    accumulator.update(x, y)
    weights, _ = accumulator.solve(0.0)
    expected, _ = _reference(x, y, 0.0)
    np.testing.assert_allclose(weights, expected, atol=1e-6)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda a: a.update(np.zeros((4, 5)), np.zeros((4, 3))), "features must end in 6"),
        (lambda a: a.update(np.zeros((4, 6)), np.zeros((5, 3))), "same leading shape"),
        (lambda a: a.update(np.full((4, 6), np.nan), np.zeros((4, 3))), "finite"),
        (lambda a: a.solve(), "No rows"),
        (lambda a: a.solve(-1.0), "l2 must be >= 0. Received: l2=-1.0"),
        (lambda a: a.merge(RidgeAccumulator(5, 3)), "same shape"),
    ],
)
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call(RidgeAccumulator(6, 3))


def test_bad_sizes_are_named():
    with pytest.raises(ValueError, match="num_features must be an int >= 1. Received: num_f"):
        RidgeAccumulator(0, 3)


def test_score_matches_predictions_computed_row_by_row():
    x, y = _data(rows=300, offset=4.0)
    held_x, held_y = _data(rows=200, seed=5, offset=4.0)
    train, held = RidgeAccumulator(6, 3), RidgeAccumulator(6, 3)
    train.update(x, y)
    for start in range(0, 200, 64):  # several batches: the origin is the first one's mean
        held.update(held_x[start : start + 64], held_y[start : start + 64])
    weights, bias = train.solve(l2=1.0)
    score = held.score(weights, bias + 0.05)  # a biased map: the offset must count
    predicted = held_x @ weights + bias + 0.05
    residual = ((held_y - predicted) ** 2).sum()
    total = ((held_y - held_y.mean(0)) ** 2).sum()
    np.testing.assert_allclose(score.r2, 1 - residual / total, rtol=1e-9)
    expected_cc = [np.corrcoef(predicted[:, c], held_y[:, c])[0, 1] for c in range(3)]
    np.testing.assert_allclose(score.channel_cc, expected_cc, rtol=1e-9)
    np.testing.assert_allclose(score.mean_cc, np.mean(expected_cc), rtol=1e-9)


def test_score_marks_constant_targets():
    x, y = _data(rows=100)
    y[:, 1] = 3.0  # a dead channel
    accumulator = RidgeAccumulator(6, 3)
    accumulator.update(x, y)
    score = accumulator.score(*accumulator.solve(l2=0.1))
    assert np.isnan(score.channel_cc[1]) and np.isfinite(score.channel_cc[[0, 2]]).all()
    assert np.isfinite(score.mean_cc)


def test_same_origin_states_sum_to_the_whole():
    x, y = _data(rows=400, offset=10.0)
    whole, first, second = (RidgeAccumulator(6, 3) for _ in range(3))
    whole.update(x, y)
    first.update(x[:150], y[:150])
    second.update(x[150:], y[150:])
    origin_x, origin_y = np.full(6, 9.0), np.full(3, 1.0)
    states = [a.recentred(origin_x, origin_y).state() for a in (first, second)]
    summed = {key: states[0][key] + states[1][key] for key in states[0]}
    summed["shift_x"], summed["shift_y"] = origin_x, origin_y
    combined = RidgeAccumulator.from_state(summed)
    assert combined.count == 400
    for got, expected in zip(combined.solve(l2=0.5), whole.solve(l2=0.5), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-10)
    solution = whole.solve(0.5)
    first.merge(second)
    for accumulator in (combined, first):
        np.testing.assert_allclose(
            accumulator.score(*solution).channel_cc, whole.score(*solution).channel_cc, rtol=1e-9
        )
