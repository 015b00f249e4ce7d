r"""The explainable model's own explanation of a region: its contribution maps, weighed.

An explainable model (``tfsal.explain``, ``linear`` readout) outputs
``contributions`` ``c``, ``(h, w, G)``: at every canvas pixel ``i``, what each feature
group ``g`` (colour channel × scale × orientation of the log-Gabor bank) adds to the
saliency logits, the last group being the learned prior with every constant of the
readout. The groups sum to the logits, ``z_i = Σ_g c_{g,i}``, and the model is linear
in its scaled log-Gabor features up to ``z``; only the normalisation after it is not.
The number every method explains (``serving.region_score``) is the region ``R``'s
predicted mass, ``M_R(z) = Σ_{i∈R} p_i`` with ``p = softmax(z)`` for a log-density
(``p = s / Σ_j s_j`` for a map, with ``s = z - min(0, min_j z_j)``: a map with negative
values is shifted to a minimum of 0, as ``RegionScore`` does).

The attribution is Integrated Gradients on the logits along the straight path from the
prior alone, ``z0 = c_prior``, to the full logits, ``z(α) = z0 + α (z − z0)``:

.. math::

    A_{g,i} = c_{g,i}\,\bar\delta_i,\qquad
    \bar\delta_i = \int_0^1 \frac{\partial M_R}{\partial z_i}\big(z(\alpha)\big)\,d\alpha,
    \qquad \frac{\partial M_R}{\partial z_i} = p_i\,(\mathbb 1[i\in R] - M_R)

(for a map, ``(1[i∈R] − M_R) / Σ_j s_j``, plus ``(N M_R − |R|) / Σ_j s_j`` at the pixel
whose negative minimum sets the shift), with ``g`` running over the image's groups.
Because ``z(α)`` moves along ``z − z0 = Σ_g c_g``, the attributions are *complete*:
``Σ_{g,i} A_{g,i} = M_R(z) − M_R(z0)``, the mass the image's features add to the mass
the prior alone would put in the region. Everything from the scaled features to ``z``
is linear, so each group's total ``Σ_i A_{g,i}`` is also exactly Integrated Gradients
of the mass in that group's scaled features from the baseline "every feature at its
training mean" (scaled feature 0); the pixel map places it where the group's logits
are (the readout's blur and the taps' bilinear upsampling, a few pixels) rather than
at the features' own cells. That costs no model call beyond the prediction: the
integral is a Gauss–Legendre sum over ``PATH_POINTS`` softmaxes of one map, and it
works for a SavedModel, whose layers are hidden. For a map, the shift is piecewise
linear along the path (its minimum pixel changes, or it reaches 0), so the integral is
split where it bends and each smooth piece gets its own nodes: completeness stays
exact for signed maps too.

It is region-specific: ``δ̄`` is positive inside the region (raising logits there
raises the mass) and negative outside (raising them elsewhere takes mass away), and it
weighs each pixel by how much mass the model puts there.

- ``region_attribution``: the map ``Σ_{g≠prior} A_{g,i}`` and each group's share;
- ``region_breakdown``: the shares as JSON-ready rows with their marginals by colour,
  scale and orientation; ``write_breakdown`` draws them.
"""

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from tfsal import conventions
from tfsal.io_utils import atomic_path, atomic_write_text

PRIOR = "prior"
# Where an export's metadata lists the contribution channels' names, in order.
GROUPS_METADATA_KEY = "contribution_groups"
# Gauss-Legendre nodes of the path integral: M_R(z(α)) is smooth in α, so 32 nodes make
# the completeness error far below the masses' float32 resolution (tested at 1e-6).
PATH_POINTS = 32


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


@dataclasses.dataclass(frozen=True)
class RegionAttribution:
    """The log-Gabor explanation of one region's predicted mass.

    Attributes:
        pixel_map: (h, w) ``Σ_{g≠prior} A_{g,i}``, in mass units; sums to
            ``mass - prior_mass``.
        shares: group name -> ``Σ_i A_{g,i}`` (the prior excluded).
        mass: ``M_R(z)``, the region's predicted mass.
        prior_mass: ``M_R(z0)``, its mass under the prior alone.
    """

    pixel_map: np.ndarray
    shares: dict[str, float]
    mass: float
    prior_mass: float


def region_mass(logits: np.ndarray, mask: np.ndarray, output_kind: str) -> float:
    """``M_R``: the share of the canvas's saliency inside ``mask`` (as ``RegionScore``)."""
    weights = _normalised(np.asarray(logits, np.float64), output_kind)
    return float((weights * mask).sum())


def _normalised(logits: np.ndarray, output_kind: str) -> np.ndarray:
    if output_kind == conventions.LOG_DENSITY:
        weights = np.exp(logits - logits.max())
        return weights / weights.sum()
    shifted = logits - min(logits.min(), 0.0)
    total = shifted.sum()
    return shifted / total if total > 0 else np.full_like(logits, 1.0 / logits.size)


def _mass_gradient(logits: np.ndarray, mask: np.ndarray, output_kind: str) -> np.ndarray:
    """``∂M_R/∂z_i`` at ``logits``."""
    weights = _normalised(logits, output_kind)
    mass = (weights * mask).sum()
    if output_kind == conventions.LOG_DENSITY:
        return weights * (mask - mass)
    total = (logits - min(logits.min(), 0.0)).sum()
    if total <= 0:
        return np.zeros_like(logits)  # constant after the shift: uniform whatever z does
    gradient = mask - mass
    if logits.min() < 0:  # the shift follows the minimum pixel
        gradient.flat[np.argmin(logits)] += logits.size * mass - mask.sum()
    return gradient / total


def _shift_breakpoints(start: np.ndarray, step: np.ndarray) -> list[float]:
    """Where ``min(0, min_i (start_i + α step_i))`` bends for α in (0, 1), in order.

    That lower envelope of lines (the 0 line included) is followed from α = 0: from
    the current lowest line, the next one is the line of smaller slope that crosses
    it first. Each bend costs one pass over the pixels.
    """
    offsets = np.append(start.ravel(), 0.0)
    slopes = np.append(step.ravel(), 0.0)
    alpha, breakpoints = 0.0, []
    current = int(np.argmin(offsets))
    while True:
        steeper = slopes < slopes[current]
        if not steeper.any():
            return breakpoints
        with np.errstate(divide="ignore", invalid="ignore"):
            crossings = (offsets - offsets[current]) / (slopes[current] - slopes)
        crossings = np.where(steeper & (crossings >= alpha), crossings, np.inf)
        following = int(np.argmin(crossings))
        if crossings[following] >= 1.0:
            return breakpoints
        alpha, current = float(crossings[following]), following
        breakpoints.append(alpha)


def region_attribution(
    contributions: np.ndarray,
    mask: np.ndarray,
    names: Sequence[str],
    output_kind: str = conventions.LOG_DENSITY,
    path_points: int = PATH_POINTS,
) -> RegionAttribution:
    """Integrated Gradients of the region's mass over the contribution maps.

    Args:
        contributions: (h, w, G) contribution maps on the canvas, summing to the logits.
        mask: (h, w) region mask on the canvas (1 inside).
        names: the G group names, one of them ``"prior"``.
        output_kind: the model's ``"log_density"`` or ``"map"``.
        path_points: Gauss-Legendre nodes of the path integral, >= 1.

    Returns:
        The pixel map, each group's share, and the masses with and without the image.

    Raises:
        ValueError: for shapes that do not match, an empty region, or no prior group.
    """
    contributions = np.asarray(contributions, np.float64)
    mask = np.asarray(mask, np.float64)
    if contributions.ndim != 3 or contributions.shape[-1] != len(names):
        raise ValueError(
            f"contributions must be (h, w, {len(names)}), one map per group name. "
            f"Received: shape={contributions.shape}"
        )
    if mask.shape != contributions.shape[:2] or not mask.any():
        raise ValueError(
            f"mask must be a non-empty region of the contributions' {contributions.shape[:2]}. "
            f"Received: shape={mask.shape}, pixels={int(np.count_nonzero(mask))}"
        )
    if PRIOR not in names:
        raise ValueError(f"names must include {PRIOR!r}. Received: names={list(names)}")
    if path_points < 1:
        raise ValueError(f"path_points must be >= 1. Received: path_points={path_points}")
    image_groups = [index for index, name in enumerate(names) if name != PRIOR]
    baseline = contributions[..., list(names).index(PRIOR)]
    image_logits = contributions[..., image_groups].sum(axis=-1)
    nodes, weights = np.polynomial.legendre.leggauss(path_points)
    bends = (
        [] if output_kind == conventions.LOG_DENSITY else _shift_breakpoints(baseline, image_logits)
    )
    edges = [0.0, *bends, 1.0]
    mean_gradient = np.zeros_like(baseline)
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        for node, weight in zip(nodes, weights, strict=True):
            alpha = low + (high - low) * (node + 1.0) / 2.0
            gradient = _mass_gradient(baseline + alpha * image_logits, mask, output_kind)
            mean_gradient += weight * (high - low) / 2.0 * gradient
    group_totals = np.einsum("hwg,hw->g", contributions[..., image_groups], mean_gradient)
    return RegionAttribution(
        pixel_map=(image_logits * mean_gradient).astype(np.float32),
        shares={
            names[index]: float(total)
            for index, total in zip(image_groups, group_totals, strict=True)
        },
        mass=region_mass(baseline + image_logits, mask, output_kind),
        prior_mass=region_mass(baseline, mask, output_kind),
    )


def region_breakdown(attribution: RegionAttribution) -> dict:
    """The region's shares as JSON-ready rows.

    Returns:
        ``{"mass", "prior_mass", "image_share", "groups": [{"name", "share"}, ...],
        "marginals"}``, in units of saliency mass. The groups' shares sum to
        ``image_share = mass - prior_mass``, and so do the marginals of each kind.
    """
    groups = [{"name": name, "share": share} for name, share in attribution.shares.items()]
    return {
        "attribution": "integrated gradients of the region's mass over the logits, from "
        "the prior alone (serving.contributions)",
        "mass": attribution.mass,
        "prior_mass": attribution.prior_mass,
        "image_share": attribution.mass - attribution.prior_mass,
        "groups": groups,
        "marginals": marginals(groups),
    }


def marginals(groups: Sequence[Mapping]) -> dict[str, dict[str, float]]:
    """Each group's ``share`` summed by colour, by scale and by orientation.

    Shares add up, so these sums are exact parts of the image's share of the mass.
    Group names of the derivation, ``"<colour>/scale<s>/orientation<o>"`` (and
    ``"<colour>/lowpass"``), are split at ``/``; other names are left out.
    """
    parts = {"colour": {}, "scale": {}, "orientation": {}}
    for group in groups:
        fields = group["name"].split("/")
        if group["name"] == PRIOR or len(fields) not in (2, 3):
            continue
        keys = dict(zip(("colour", "scale", "orientation"), fields, strict=False))
        for part, key in keys.items():
            parts[part][key] = parts[part].get(key, 0.0) + group["share"]
    return {part: values for part, values in parts.items() if values}


def write_breakdown(breakdown: dict, json_path: Path, png_path: Path, title: str) -> None:
    """Writes the breakdown as JSON and as a horizontal bar chart PNG (atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    atomic_write_text(json_path, json.dumps(breakdown, indent=2))
    panels = [(f"by {part}", values) for part, values in breakdown.get("marginals", {}).items()]
    panels.append(("every group", {g["name"]: g["share"] for g in breakdown["groups"]}))
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
    axes[-1, 0].set_xlabel(
        f"share of the region's saliency mass (mass {breakdown['mass']:.3f} = prior alone "
        f"{breakdown['prior_mass']:.3f} + the bars' sum {breakdown['image_share']:+.3f})"
    )
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    with atomic_path(png_path) as temporary:
        figure.savefig(temporary, format="png", dpi=120)
    plt.close(figure)
