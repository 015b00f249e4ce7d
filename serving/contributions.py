"""The explainable model's own explanation: its per-group contribution maps.

An explainable model (``tfsal.explain``, ``linear`` readout) outputs
``contributions``, ``(batch, h, w, G)``: at every pixel, what each feature group
(colour channel × scale × orientation of the log-Gabor bank) and the learned prior
add to the saliency logits; the G maps sum to the logits exactly. That gives

- an attribution map (``loggabor_map``): the logits the *image* puts at each pixel,
  i.e. the sum over every group but the prior, which a picture of the image alone
  cannot change — comparable with gradient attributions in the faithfulness
  benchmark;
- a breakdown of a region (``region_breakdown``): each group's mean contribution
  inside the region, over the whole image, and their difference. The log-density's
  normalisation ignores constant shifts, so the difference is what makes the region
  more salient than the rest of the image, in logit units.
"""

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from tfsal.io_utils import atomic_path, atomic_write_text

PRIOR = "prior"
# Where an export's metadata lists the contribution channels' names, in order.
GROUPS_METADATA_KEY = "contribution_groups"


def group_names(count: int, metadata: Mapping | None = None, model=None) -> list[str]:
    """The names of the ``count`` contribution channels.

    Read from the export's metadata (``contribution_groups``) or from a layer of the
    Keras model that holds ``group_names``; otherwise ``group_0 ... group_{G-2}`` and
    ``prior`` (the derivation puts the prior last).

    Raises:
        ValueError: if the names found do not match ``count``.
    """
    names = (metadata or {}).get(GROUPS_METADATA_KEY)
    if names is None and model is not None:
        for layer in getattr(model, "layers", ()):
            if getattr(layer, "group_names", None):
                names = list(layer.group_names)
    if names is None:
        return [f"group_{index}" for index in range(count - 1)] + [PRIOR]
    names = [str(name) for name in names]
    if len(names) != count:
        raise ValueError(
            f"The model names {len(names)} contribution groups but outputs {count} maps."
        )
    return names


def loggabor_map(contributions: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """The image-driven logits: every group's contribution but the prior's, (h, w)."""
    contributions = np.asarray(contributions, np.float64)
    keep = [index for index, name in enumerate(names) if name != PRIOR]
    return contributions[..., keep].sum(axis=-1).astype(np.float32)


def region_breakdown(
    contributions: np.ndarray, mask: np.ndarray, names: Sequence[str], valid: np.ndarray
) -> dict:
    """Per-group contributions of a region against the image.

    Args:
        contributions: (h, w, G) contribution maps on the canvas.
        mask: (h, w) region mask.
        names: the G group names.
        valid: (h, w) mask of the image's pixels on the canvas (the padding of a
            letterboxed image is no part of it).

    Returns:
        ``{"groups": [{"name", "region_mean", "image_mean", "difference"}, ...],
        "region_logit_mean", "image_logit_mean"}``, in logit units.
    """
    contributions = np.asarray(contributions, np.float64)
    inside = np.asarray(mask, bool) & np.asarray(valid, bool)
    everywhere = np.asarray(valid, bool)
    region_means = contributions[inside].mean(axis=0)
    image_means = contributions[everywhere].mean(axis=0)
    groups = [
        {
            "name": name,
            "region_mean": float(region),
            "image_mean": float(image),
            "difference": float(region - image),
        }
        for name, region, image in zip(names, region_means, image_means, strict=True)
    ]
    return {
        "groups": groups,
        "region_logit_mean": float(region_means.sum()),
        "image_logit_mean": float(image_means.sum()),
    }


def write_breakdown(breakdown: dict, json_path: Path, png_path: Path, title: str) -> None:
    """Writes the breakdown as JSON and as a horizontal bar chart PNG (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    atomic_write_text(json_path, json.dumps(breakdown, indent=2))
    groups = breakdown["groups"]
    values = [group["difference"] for group in groups]
    figure, axes = plt.subplots(figsize=(6.5, 1.2 + 0.22 * len(groups)))
    colours = ["#c0392b" if value > 0 else "#2c7fb8" for value in values]
    axes.barh(range(len(groups)), values, color=colours)
    axes.set_yticks(range(len(groups)), [group["name"] for group in groups], fontsize=7)
    axes.invert_yaxis()
    axes.axvline(0.0, color="black", linewidth=0.8)
    axes.set_xlabel("contribution to the logits: region mean − image mean")
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    with atomic_path(png_path) as temporary:
        figure.savefig(temporary, format="png", dpi=120)
    plt.close(figure)
