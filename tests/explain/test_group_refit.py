"""tfsal.explain.group_refit: the drop in R² when the ridge is refitted without a group."""

import numpy as np
import pytest

from tfsal.explain import group_refit
from tfsal.explain.ridge import RidgeAccumulator


def _ridge_r2(x_train, y_train, x_val, y_val, l2):
    """Validation R² of ridge with an unpenalised bias, solved from the rows themselves."""
    mean_x, mean_y = x_train.mean(axis=0), y_train.mean(axis=0)
    centred = x_train - mean_x
    weights = np.linalg.solve(
        centred.T @ centred + l2 * len(x_train) * np.eye(x_train.shape[1]),
        centred.T @ (y_train - mean_y),
    )
    prediction = (x_val - mean_x) @ weights + mean_y
    total = ((y_val - y_val.mean(axis=0)) ** 2).sum()
    return 1 - ((y_val - prediction) ** 2).sum() / total


def _accumulated(x, y):
    accumulator = RidgeAccumulator(x.shape[1], y.shape[1])
    for part in np.array_split(np.arange(len(x)), 3):  # streamed in batches
        accumulator.update(x[part], y[part])
    return accumulator


@pytest.fixture(scope="module")
def rows():
    """Six features, of which 0-1 drive the targets, 2 is a copy of 0 plus noise."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6)) + 5.0  # an offset, as pooled magnitudes have
    x[:, 2] = x[:, 0] + 0.3 * rng.normal(size=400)
    y = x[:, :2] @ np.array([[1.0, -2.0], [0.5, 1.0]]) + 0.5 * rng.normal(size=(400, 2))
    return x[:300], y[:300], x[300:], y[300:]


def test_the_refit_drop_is_the_ridge_refitted_without_the_group(rows):
    x_train, y_train, x_val, y_val = rows
    train, val = _accumulated(x_train, y_train), _accumulated(x_val, y_val)
    members = {"driver": [1], "copied pair": [0, 2], "noise": [3, 4, 5]}
    drops = group_refit.refit_r2_drops(train, val, members, l2=1e-3)
    full = _ridge_r2(x_train, y_train, x_val, y_val, 1e-3)
    assert group_refit.refit_r2(train, val, 1e-3) == pytest.approx(full, abs=1e-9)
    for label, columns in members.items():
        kept = [c for c in range(6) if c not in columns]
        expected = full - _ridge_r2(x_train[:, kept], y_train, x_val[:, kept], y_val, 1e-3)
        assert drops[label] == pytest.approx(expected, abs=1e-9), label
    assert drops["driver"] > 0.1 and drops["copied pair"] > 0.1
    assert abs(drops["noise"]) < 0.01


def test_a_group_with_a_correlated_partner_loses_little_when_refitted(rows):
    x_train, y_train, x_val, y_val = rows
    train, val = _accumulated(x_train, y_train), _accumulated(x_val, y_val)
    alone = group_refit.refit_r2_drops(train, val, {"0": [0], "0 and 2": [0, 2]}, l2=1e-3)
    # Feature 2 stands in for feature 0 once 0 is refitted away: only the pair is needed.
    assert alone["0"] < 0.5 * alone["0 and 2"]


def test_every_feature_cannot_be_dropped(rows):
    train = _accumulated(*rows[:2])
    with pytest.raises(ValueError, match="Cannot drop every feature"):
        group_refit.without_features(train, range(6))


def test_statistics_round_trip_through_the_file(rows, tmp_path):
    statistics = {
        "train": {"tap/a": _accumulated(*rows[:2])},
        "val": {"tap/a": _accumulated(*rows[2:])},
    }
    path = group_refit.save_statistics(tmp_path / group_refit.STATISTICS_FILE, statistics)
    loaded = group_refit.load_statistics(path)
    assert group_refit.refit_r2(
        loaded["train"]["tap/a"], loaded["val"]["tap/a"], 1e-2
    ) == pytest.approx(
        group_refit.refit_r2(statistics["train"]["tap/a"], statistics["val"]["tap/a"], 1e-2)
    )
    path.write_bytes(b"not an npz")
    with pytest.raises(ValueError, match="not readable derivation statistics"):
        group_refit.load_statistics(path)


def test_statistics_of_another_derivation_are_refused(rows):
    train, val = _accumulated(*rows[:2]), _accumulated(*rows[2:])
    r2 = group_refit.refit_r2(train, val, 1e-2)
    fidelity = {"taps": {"t": {"l2": 1e-2, "r2_by_l2": {"0.01": r2}}}}
    statistics = {"train": {"t": train}, "val": {"t": val}}
    assert group_refit.checked_statistics(statistics, fidelity, "t", 6)[2] == 1e-2
    assert group_refit.checked_statistics(None, fidelity, "t", 6) is None
    with pytest.raises(ValueError, match="6 features for tap 't'.*reads 8"):
        group_refit.checked_statistics(statistics, fidelity, "t", 8)
    fidelity["taps"]["t"]["r2_by_l2"]["0.01"] = r2 - 0.01
    with pytest.raises(ValueError, match="another derivation"):
        group_refit.checked_statistics(statistics, fidelity, "t", 6)
