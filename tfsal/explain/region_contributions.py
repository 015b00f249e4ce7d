"""Which feature groups raise one region of an image: shares of a region's contributions.

A ``linear`` explainable model's saliency logits are the sum of one contribution
map per feature group (``tfsal.explain.contributions``). Each map carries an
arbitrary constant (standardised features are zero on the training average, not on
this image), so a region is read by how much each group *raises it above the
image's average*: its elevation, the group's weighted mean over the region minus its
mean over the image. The elevations of all groups add up to the region's elevation
of the logits (in nats for a log-density model).

``elevation_shares`` splits the positive elevations by colour (luminance, chroma,
the centre prior) and, among the oriented band-pass groups, by orientation. On
pop-out arrays (``benchmarks/popout_contributions.py``) this says whether chroma
carries colour singletons and the target bar's orientation carries orientation
singletons, against a distractor item and the background.
"""

import numpy as np

from tfsal.explain.contributions import PRIOR_GROUP
from tfsal.explain.report import parse_group

# The achromatic channel of every colour space the bank offers (colour.COLOUR_CHANNELS);
# the opponent space's third axis is its luminance (see report.colour_transform).
LUMINANCE_CHANNELS = frozenset({"Y", "L", "O3", "gray"})
CHROMA_CHANNELS = frozenset({"U", "V", "a", "b", "O1", "O2"})


def bar_orientation(angle_degrees: float, num_orientations: int) -> int:
    """The bank orientation whose passband a bar's edges excite most.

    The bank's orientation ``o`` passes spatial frequencies at ``o·180°/n``
    anticlockwise from the x axis (``tfsal.layers.log_gabor_filters``); a bar's
    spectrum lies across its long axis, 90° from it.

    Args:
        angle_degrees: the bar's long axis, anticlockwise from x with rows pointing
            down (``PopoutStimulus.target_angle``).
        num_orientations: the bank's number of orientations.

    Returns:
        The orientation index in ``[0, num_orientations)``.
    """
    if num_orientations < 1:
        raise ValueError(f"num_orientations must be >= 1. Received: {num_orientations=}")
    spacing = 180.0 / num_orientations
    return int(round(((angle_degrees + 90.0) % 180.0) / spacing)) % num_orientations


def region_elevation(contributions: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Every group's weighted mean over a region minus its mean over the image.

    Args:
        contributions: (H, W, G) one image's contributions.
        weights: (H, W) the region, as a bool mask or as coverage in [0, 1] (an item
            mask resized to the model's resolution keeps its partial pixels).

    Returns:
        (G,) elevations; their sum is the region's elevation of the logits.

    Raises:
        ValueError: for weights of another size, negative, or all zero.
    """
    weights = np.asarray(weights, np.float64)
    if weights.shape != contributions.shape[:2] or weights.min() < 0 or weights.sum() <= 0:
        raise ValueError(
            f"weights must be a non-empty, non-negative (H, W) region of the contributions' "
            f"size {contributions.shape[:2]}. Received: shape={weights.shape}, "
            f"sum={float(weights.sum())}"
        )
    flat = contributions.reshape(-1, contributions.shape[-1]).astype(np.float64)
    region = weights.reshape(-1) @ flat / weights.sum()
    return region - flat.mean(axis=0)


def colour_class(name: str) -> str:
    """``"luminance"``, ``"chroma"`` or ``"prior"`` for a group name.

    Raises:
        ValueError: for a colour channel that is neither (e.g. the ``rgb`` bank).
    """
    if name == PRIOR_GROUP:
        return "prior"
    channel = parse_group(name)["colour"]
    if channel in LUMINANCE_CHANNELS:
        return "luminance"
    if channel in CHROMA_CHANNELS:
        return "chroma"
    raise ValueError(
        f"Colour channel {channel!r} is neither luminance nor chroma; use a bank in yuv, "
        f"opponent, lab or gray. Received: {name!r}"
    )


def elevation_shares(elevation: np.ndarray, names: list[str]) -> dict:
    """Splits a region's positive elevations by colour and by orientation.

    Args:
        elevation: (G,) ``region_elevation``'s result.
        names: the G group names, ``"prior"`` last.

    Returns:
        ``elevation``: the summed elevation (all groups, negative ones included);
        ``colour``: the shares of the positive elevation carried by ``luminance``,
        ``chroma`` and ``prior`` groups; ``band_pass``: the share carried by the
        oriented (band-pass) groups of any colour; ``orientation``: per orientation
        index, its share of the band-pass groups' positive elevation (all zeros when
        no band-pass group raises the region).
    """
    if len(elevation) != len(names):
        raise ValueError(
            f"One elevation per group name. Received: {len(elevation)} elevations, "
            f"{len(names)} names"
        )
    positive = np.maximum(np.asarray(elevation, np.float64), 0.0)
    total = positive.sum()
    colour = {"luminance": 0.0, "chroma": 0.0, "prior": 0.0}
    orientation: dict[int, float] = {}
    band_pass = 0.0
    for value, name in zip(positive, names, strict=True):
        colour[colour_class(name)] += value
        index = parse_group(name).get("orientation")
        if index is not None:
            orientation[index] = orientation.get(index, 0.0) + value
            band_pass += value
    return {
        "elevation": float(np.sum(elevation)),
        "colour": {k: float(v / total) if total > 0 else 0.0 for k, v in colour.items()},
        "band_pass": float(band_pass / total) if total > 0 else 0.0,
        "orientation": {
            k: float(v / band_pass) if band_pass > 0 else 0.0
            for k, v in sorted(orientation.items())
        },
    }
