"""How much a tap's reconstruction needs a feature group: refit the ridge without it.

Setting a group's features to their mean in a fitted reconstruction and scoring what
is left measures how much the *fitted* weights lean on the group, not how much the
tap needs it: the other groups' weights were fitted beside it, so when groups are
correlated (the colour channels of one scale, the neighbouring orientations) the
score can even rise, and a negative "importance" says nothing about the group.

Refitting without the group answers the question asked. The derivation solved every
reconstruction from normal equations (``RidgeAccumulator``: X^T X and X^T Y on the
training images, the same on the validation images), and dropping a group is
dropping its rows and columns of those matrices: the refit is exact, and costs one
solve of at most K x K per group, with no pass over the images. The drop

    R²_val(ridge on every group) - R²_val(ridge without the group)

is the validation R² that only the group explains. It is >= 0 up to noise; a group
whose features only fit noise of the training images can make it slightly negative.

``save_statistics`` / ``load_statistics`` keep the accumulators next to a run
(``derivation-statistics.npz``) so that a report can refit later.
"""

import re
from pathlib import Path

import numpy as np

from tfsal.explain.ridge import STATE_KEYS, RidgeAccumulator
from tfsal.io_utils import atomic_path

STATISTICS_FILE = "derivation-statistics.npz"
SPLITS = ("train", "val")
_KEY = re.compile(r"^(?P<split>train|val)/(?P<tap>.+)/(?P<state>[a-z_]+)$")


def without_features(accumulator: RidgeAccumulator, dropped) -> RidgeAccumulator:
    """The same rows with the feature columns ``dropped`` left out (exact)."""
    kept = np.setdiff1d(np.arange(accumulator.num_features), np.asarray(dropped, dtype=int))
    if kept.size == 0:
        raise ValueError(
            "Cannot drop every feature of a reconstruction. Received: "
            f"{len(dropped)} of {accumulator.num_features} features dropped"
        )
    state = accumulator.state()
    for key in ("shift_x", "sum_x", "xty"):
        state[key] = state[key][kept]
    state["xtx"] = state["xtx"][np.ix_(kept, kept)]
    return RidgeAccumulator.from_state(state, accumulator.fit_intercept)


def refit_r2(train: RidgeAccumulator, val: RidgeAccumulator, l2: float) -> float:
    """Validation R² of the ridge solution of ``train`` with penalty ``l2`` per row.

    ``l2`` is per accumulated training row, as in the derivation's grid
    (``derivation.json``: ``taps[tap]["l2"]``).
    """
    return val.score(*train.solve(l2 * train.count)).r2


def refit_r2_drops(
    train: RidgeAccumulator, val: RidgeAccumulator, members: dict[str, list[int]], l2: float
) -> dict[str, float]:
    """Per group: validation R² of the full refit minus that of the refit without it.

    Args:
        train: the tap's normal equations on the training images.
        val: the same on the validation images.
        members: group label -> the feature columns of the group (every copy).
        l2: the tap's ridge penalty per training row.
    """
    full = refit_r2(train, val, l2)
    return {
        label: full - refit_r2(without_features(train, columns), without_features(val, columns), l2)
        for label, columns in members.items()
    }


def checked_statistics(statistics: dict | None, fidelity: dict, tap: str, num_features: int):
    """``(train, val, l2)`` of one tap, checked against the tap's reconstruction.

    The statistics must be the ones this model's reconstruction was solved from: the
    derivation recorded the validation R² of every ridge penalty it tried
    (``r2_by_l2``), and a refit from the statistics must give them back.

    Raises:
        ValueError: if the statistics belong to another derivation.
    """
    if statistics is None:
        return None
    scores = fidelity["taps"][tap]
    train, val = statistics["train"].get(tap), statistics["val"].get(tap)
    found = None if train is None else train.num_features
    if found != num_features:
        raise ValueError(
            f"The derivation statistics hold {found} features for tap {tap!r}, its "
            f"reconstruction reads {num_features}: they belong to another derivation. "
            "Derive the model again to rewrite them."
        )
    for l2, r2 in scores.get("r2_by_l2", {}).items():
        refitted = refit_r2(train, val, float(l2))
        if not np.isclose(refitted, r2, rtol=0, atol=1e-6):
            raise ValueError(
                f"The derivation statistics of tap {tap!r} refit to validation R² "
                f"{refitted:.6f} at l2={l2}, the derivation recorded {r2:.6f}: they belong "
                "to another derivation. Derive the model again to rewrite them."
            )
    return train, val, scores["l2"]


def save_statistics(path, statistics: dict) -> Path:
    """Writes ``{"train": {tap: accumulator}, "val": {...}}`` as one npz, atomically."""
    arrays = {
        f"{split}/{tap}/{key}": value
        for split in SPLITS
        for tap, accumulator in statistics[split].items()
        for key, value in accumulator.state().items()
    }
    path = Path(path)
    with atomic_path(path) as temporary, open(temporary, "wb") as file:
        np.savez(file, **arrays)
    return path


def load_statistics(path) -> dict:
    """Reads ``save_statistics``' file back into accumulators.

    Raises:
        ValueError: if the file is unreadable or is not such a file.
    """
    states = {split: {} for split in SPLITS}
    try:
        with np.load(path, allow_pickle=False) as archive:
            for name in archive.files:
                match = _KEY.match(name)
                if not match or match["state"] not in STATE_KEYS:
                    raise ValueError(f"unexpected entry {name!r}")
                states[match["split"]].setdefault(match["tap"], {})[match["state"]] = archive[name]
        statistics = {
            split: {tap: RidgeAccumulator.from_state(state) for tap, state in taps.items()}
            for split, taps in states.items()
        }
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(
            f"{path} is not readable derivation statistics ({error}); delete it, or derive "
            "the model again to rewrite it."
        ) from None
    if set(statistics["train"]) != set(statistics["val"]):
        raise ValueError(
            f"{path} holds training statistics for taps {sorted(statistics['train'])} but "
            f"validation statistics for {sorted(statistics['val'])}; derive the model again."
        )
    return statistics
