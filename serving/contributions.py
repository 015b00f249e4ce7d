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
        "marginals": marginals(groups),
        "region_logit_mean": float(region_means.sum()),
        "image_logit_mean": float(image_means.sum()),
    }


def marginals(groups: Sequence[Mapping]) -> dict[str, dict[str, float]]:
    """Each group's ``difference`` summed by colour, by scale and by orientation.

    Contributions add up, so these sums are exact shares of the region's contrast.
    Group names of the derivation, ``"<colour>/scale<s>/orientation<o>"`` (and
    ``"<colour>/lowpass"``), are split at ``/``; other names and the prior are left out.
    """
    parts = {"colour": {}, "scale": {}, "orientation": {}}
    for group in groups:
        fields = group["name"].split("/")
        if group["name"] == PRIOR or len(fields) not in (2, 3):
            continue
        keys = dict(zip(("colour", "scale", "orientation"), fields, strict=False))
        for part, key in keys.items():
            parts[part][key] = parts[part].get(key, 0.0) + group["difference"]
    return {part: values for part, values in parts.items() if values}


def write_breakdown(breakdown: dict, json_path: Path, png_path: Path, title: str) -> None:
    """Writes the breakdown as JSON and as a horizontal bar chart PNG (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    atomic_write_text(json_path, json.dumps(breakdown, indent=2))
    panels = [(f"by {part}", values) for part, values in breakdown.get("marginals", {}).items()]
    panels.append(("every group", {g["name"]: g["difference"] for g in breakdown["groups"]}))
    rows = [len(values) for _, values in panels]
    figure, axes = plt.subplots(
        len(panels),
        1,
        figsize=(6.5, 1.0 + 0.22 * sum(rows) + 0.6 * len(panels)),
        gridspec_kw={"height_ratios": [max(2, count) for count in rows]},
        squeeze=False,
    )
    for ax, (name, values) in zip(axes[:, 0], panels, strict=True):
        colours = ["#c0392b" if value > 0 else "#2c7fb8" for value in values.values()]
        ax.barh(range(len(values)), list(values.values()), color=colours)
        ax.set_yticks(range(len(values)), list(values), fontsize=7)
        ax.invert_yaxis()
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_title(name, fontsize=8)
    axes[-1, 0].set_xlabel("contribution to the logits: region mean − image mean")
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    with atomic_path(png_path) as temporary:
        figure.savefig(temporary, format="png", dpi=120)
    plt.close(figure)
