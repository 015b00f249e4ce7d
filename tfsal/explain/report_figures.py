"""The interpretation report's figures, drawn with matplotlib (Agg) into PNG files.

Every function writes one PNG atomically and returns the numbers it plotted (lists,
JSON-ready), so the report's JSON holds exactly what the pictures show. Heat maps
carry a colour bar, charts labelled axes with units; figures are 10 inches wide at
100 dpi, about a laptop page's width.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402 (the backend must be chosen first)
import numpy as np  # noqa: E402

from tfsal.explain.report import ASPECTS, aspect_members, r2_score  # noqa: E402
from tfsal.io_utils import atomic_path  # noqa: E402

WIDTH = 10.0
DPI = 100


def _save(figure, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(figure)


def _heat(axis, values, title, label, cmap="viridis", symmetric=False):
    limit = float(np.abs(values).max()) or 1.0
    limits = {"vmin": -limit, "vmax": limit} if symmetric else {}
    shown = axis.imshow(values, cmap=cmap, **limits)
    axis.set_title(title, fontsize=9)
    axis.set_xticks([])
    axis.set_yticks([])
    plt.colorbar(shown, ax=axis, fraction=0.046, pad=0.02, label=label)


def reconstruction_figure(
    path, image: np.ndarray, activations: dict, reconstructions: dict, r2: dict
) -> dict:
    """One image: per tap, its most varying channel's activation next to its reconstruction.

    Args:
        path: the PNG to write.
        image: (H, W, 3) RGB in [0, 255].
        activations: tap -> (h, w, C) the parent's activations for this image.
        reconstructions: tap -> (h, w, C) the explainable model's reconstructions.
        r2: tap -> the tap's validation R².

    Returns:
        tap -> ``{"channel", "r2_here", "activation", "reconstruction"}``: the plotted
        maps and the R² of the shown channel on this image.
    """
    taps = list(activations)
    figure, axes = plt.subplots(
        len(taps), 3, figsize=(WIDTH, 3.0 * len(taps)), squeeze=False, layout="constrained"
    )
    plotted = {}
    for row, tap in enumerate(taps):
        activation, reconstruction = activations[tap], reconstructions[tap]
        channel = int(activation.reshape(-1, activation.shape[-1]).var(axis=0).argmax())
        axes[row, 0].imshow(np.clip(image, 0, 255).astype(np.uint8))
        axes[row, 0].set_title("image", fontsize=9)
        axes[row, 0].axis("off")
        both = np.stack([activation[..., channel], reconstruction[..., channel]])
        low, high = float(both.min()), float(both.max())
        # The tap's validation R² pools every channel and image; the shown channel on
        # this image can be far better or worse, so both are given.
        here = r2_score(both[1][..., None], both[0][..., None])
        titles = (
            f"{tap} channel {channel}: activation",
            f"reconstruction: R² {here:.2f} here\n(tap's validation R² {r2[tap]:.2f})",
        )
        for column, (title, values) in enumerate(zip(titles, both, strict=True), start=1):
            shown = axes[row, column].imshow(values, cmap="viridis", vmin=low, vmax=high)
            axes[row, column].set_title(title, fontsize=9)
            axes[row, column].set_xticks([])
            axes[row, column].set_yticks([])
            figure.colorbar(shown, ax=axes[row, column], label="activation (unitless)")
        plotted[tap] = {
            "channel": channel,
            "r2_here": here,
            "activation": both[0].round(5).tolist(),
            "reconstruction": both[1].round(5).tolist(),
        }
    _save(figure, path)
    return plotted


def importance_figure(path, importance: dict, saliency_drop: dict | None) -> dict:
    """Bars per aspect: weight share and R² drop per tap, saliency CC drop.

    Args:
        path: the PNG to write.
        importance: tap -> aspect -> label -> ``{"weight_share", "r2_drop"}``.
        saliency_drop: aspect -> label -> CC drop, or ``None`` (a ``decoder``
            readout): the third column is then left out.

    Returns:
        ``{aspect: {"labels", "weight_share": {tap: [...]}, "r2_drop": {tap: [...]},
        "saliency_cc_drop": [...] or None}}``.
    """
    taps = list(importance)
    columns = 2 if saliency_drop is None else 3
    figure, axes = plt.subplots(
        len(ASPECTS),
        columns,
        figsize=(WIDTH * columns / 3, 2.8 * len(ASPECTS)),
        squeeze=False,
        layout="constrained",
    )
    ylabels = ("share of |weight| × spread", "R² drop when removed", "saliency CC drop")
    plotted = {}
    for row, aspect in enumerate(ASPECTS):
        labels = list(importance[taps[0]][aspect])
        positions = np.arange(len(labels))
        width = 0.8 / len(taps)
        entry = {"labels": labels, "weight_share": {}, "r2_drop": {}, "saliency_cc_drop": None}
        for column, key in enumerate(("weight_share", "r2_drop")):
            for index, tap in enumerate(taps):
                values = [importance[tap][aspect][label][key] for label in labels]
                axes[row, column].bar(positions + index * width, values, width, label=tap)
                entry[key][tap] = values
        if saliency_drop is not None:
            entry["saliency_cc_drop"] = [saliency_drop[aspect][label] for label in labels]
            axes[row, 2].bar(positions, entry["saliency_cc_drop"], 0.6, color="tab:gray")
        for column in range(columns):
            axis = axes[row, column]
            shift = (len(taps) - 1) * width / 2 if column < 2 else 0.0
            axis.set_xticks(positions + shift, labels, fontsize=8, rotation=20)
            axis.set_xlabel(aspect)
            axis.set_ylabel(ylabels[column], fontsize=8)
            axis.axhline(0, color="black", linewidth=0.5)
        plotted[aspect] = entry
    # One legend above the grid: inside a panel it hid the bars of six orientations.
    handles, labels = axes[0, 0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside upper center", ncols=len(taps), title="tap")
    _save(figure, path)
    return plotted


def centre_bias_figure(path, centre_bias: dict) -> dict:
    """Bars: the centre-prior share of every tap and of the saliency logits.

    Left: the share of every tap's activation and reconstruction that centred
    Gaussian maps explain; right (``linear`` readout only): the prior's share of the
    logits' variance and the CC with the parent of the prior-only and content-only
    saliency.

    Returns:
        ``{"taps", "activation", "reconstruction", "saliency": {...} or None}``.
    """
    taps = list(centre_bias["taps"])
    activation = [centre_bias["taps"][tap]["activation"] for tap in taps]
    reconstruction = [centre_bias["taps"][tap]["reconstruction"] for tap in taps]
    saliency = centre_bias["saliency"]
    panels = 1 if saliency is None else 2
    figure, axes = plt.subplots(
        1, panels, figsize=(WIDTH * panels / 2, 3.2), squeeze=False, layout="constrained"
    )
    _paired_bars(
        axes[0, 0],
        taps,
        (activation, "parent activation"),
        (reconstruction, "reconstruction"),
        xlabel="tap",
        ylabel="variance explained by centre maps (R²)",
        top=1,
    )
    plotted = {"taps": taps, "activation": activation, "reconstruction": reconstruction}
    plotted["saliency"] = None
    if saliency is not None:
        names = ["prior share of logit variance", "CC prior only", "CC content only"]
        values = [
            saliency["variance_share"],
            saliency["cc_prior_only"],
            saliency["cc_content_only"],
        ]
        right = axes[0, 1]
        right.barh(names, values, color=["tab:purple", "tab:orange", "tab:green"])
        right.set_xlabel("share (first bar) or CC with the parent's saliency")
        right.set_xlim(min(0.0, *values), 1)
        plotted["saliency"] = dict(zip(names, values, strict=True))
    _save(figure, path)
    return plotted


def _paired_bars(axis, labels, first, second, *, xlabel, ylabel, top) -> None:
    """Two bars per label, ``first`` and ``second`` as ``(values, legend label)``."""
    positions = np.arange(len(labels))
    for offset, (values, label) in ((-0.2, first), (0.2, second)):
        axis.bar(positions + offset, values, 0.4, label=label)
    axis.set_xticks(positions, labels)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_ylim(0, top)
    axis.legend(fontsize=8)


def colour_figure(path, colour_transform: dict) -> dict:
    """Bars: principal angles between the first layer's colour axes and each reference.

    Returns:
        ``{"references", "luminance_angle_deg", "chroma_angle_deg"}``.
    """
    references = list(colour_transform["references"])
    luminance = [colour_transform["references"][r]["luminance_angle_deg"] for r in references]
    chroma = [colour_transform["references"][r]["chroma_angle_deg"] for r in references]
    figure, axis = plt.subplots(figsize=(WIDTH * 0.6, 3.0), layout="constrained")
    _paired_bars(
        axis,
        references,
        (luminance, "strongest axis vs achromatic axis"),
        (chroma, "other two axes vs chromatic plane"),
        xlabel="reference colour space",
        ylabel="principal angle (degrees)",
        top=90,
    )
    _save(figure, path)
    return {"references": references, "luminance_angle_deg": luminance, "chroma_angle_deg": chroma}


def contribution_groups(names: list[str]) -> dict[str, list[int]]:
    """The page's contribution maps: every colour, scale and orientation, and the prior."""
    groups = {}
    for members in aspect_members(names[:-1]).values():
        groups.update(members)
    groups["prior"] = [len(names) - 1]
    return groups


def contribution_figure(path, image: np.ndarray, contributions: np.ndarray, names, shown) -> dict:
    """One image: the total logits and the contribution maps of the ``shown`` groups.

    Args:
        path: the PNG to write.
        image: (H, W, 3) RGB in [0, 255].
        contributions: (H, W, G) one image's contributions.
        names: the G group names.
        shown: labels of ``contribution_groups(names)`` to draw.

    Returns:
        label -> ``{"min", "max", "mean"}`` of the plotted map (the maps themselves
        are image-sized; their range fixes the colour bar).
    """
    groups = contribution_groups(names)
    maps = {"total (logits)": contributions.sum(axis=-1)}
    maps.update({label: contributions[..., groups[label]].sum(axis=-1) for label in shown})
    columns = min(4, len(maps) + 1)
    rows = -(-(len(maps) + 1) // columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(WIDTH, 2.6 * rows), squeeze=False, layout="constrained"
    )
    flat = axes.ravel()
    flat[0].imshow(np.clip(image, 0, 255).astype(np.uint8))
    flat[0].set_title("image", fontsize=9)
    flat[0].axis("off")
    plotted = {}
    for axis, (label, values) in zip(flat[1:], maps.items(), strict=False):
        _heat(axis, values, label, "logit contribution", cmap="RdBu_r", symmetric=True)
        plotted[label] = {
            "min": float(values.min()),
            "max": float(values.max()),
            "mean": float(values.mean()),
        }
    for axis in flat[len(maps) + 1 :]:
        axis.axis("off")
    figure.suptitle("contribution to the saliency logits (log-density units; red raises)")
    _save(figure, path)
    return plotted


def render_figures(folder, analysis, groups_per_figure: int = 7) -> dict:
    """Draws every figure of ``analysis`` (a ``tfsal.explain.report.Analysis``) into ``folder``.

    Returns:
        ``{"files": {figure: file name or [per image]}, "plotted": {figure: numbers},
        "groups": {label: [per-image file names]}}``: the group files are single-map
        PNGs for the page's group picker.
    """
    folder = Path(folder)
    numbers, maps = analysis.numbers, analysis.maps
    r2 = {tap: scores["r2"] for tap, scores in numbers["fidelity"]["taps"].items()}
    files, plotted = {"reconstructions": [], "contributions": []}, {}
    plotted["reconstructions"], plotted["contributions"] = [], []
    names = numbers["groups"]  # None for a decoder readout: no contributions
    colours = list(aspect_members(names[:-1])["colour"]) if names else []
    for index, image in enumerate(maps["images"]):
        name = f"reconstructions-{index:02d}.png"
        plotted["reconstructions"].append(
            reconstruction_figure(
                folder / name,
                image,
                {tap: a[index] for tap, a in maps["activations"].items()},
                {tap: r[index] for tap, r in maps["reconstructions"].items()},
                r2,
            )
        )
        files["reconstructions"].append(name)
        if names is None:
            continue
        name = f"contributions-{index:02d}.png"
        shown = [*colours, "prior"][:groups_per_figure]
        plotted["contributions"].append(
            contribution_figure(folder / name, image, maps["contributions"][index], names, shown)
        )
        files["contributions"].append(name)
    files["importance"] = "importance.png"
    plotted["importance"] = importance_figure(
        folder / files["importance"], numbers["importance"], numbers["saliency_cc_drop"]
    )
    files["centre_bias"] = "centre-bias.png"
    plotted["centre_bias"] = centre_bias_figure(
        folder / files["centre_bias"], numbers["centre_bias"]
    )
    if numbers["colour_transform"] is not None:
        files["colour"] = "colour.png"
        plotted["colour"] = colour_figure(folder / files["colour"], numbers["colour_transform"])
    group_files = {}
    groups = contribution_groups(names) if names else {}
    for label, index in groups.items():
        group_files[label] = []
        for image_index in range(len(maps["images"])):
            name = f"group-{_slug(label)}-{image_index:02d}.png"
            values = maps["contributions"][image_index][..., index].sum(axis=-1)
            figure, axis = plt.subplots(figsize=(WIDTH * 0.4, 3.0), layout="constrained")
            _heat(axis, values, label, "logit contribution", cmap="RdBu_r", symmetric=True)
            _save(figure, folder / name)
            group_files[label].append(name)
    return {"files": files, "plotted": plotted, "groups": group_files}


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label).lower()
