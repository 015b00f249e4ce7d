"""The interpretation report's figures, drawn with matplotlib (Agg) into PNG files.

Every function writes one PNG atomically and returns the numbers it plotted (lists,
JSON-ready), so the report's JSON holds exactly what the pictures show. Heat maps
carry a colour bar, charts labelled axes with units; figures are 10 inches wide at
100 dpi, about a laptop page's width. Drawing is most of the report's cost, so the
figures use matplotlib's constrained layout only (no second "tight" pass) and the
many single-map pictures of the group picker are colour-mapped without matplotlib.
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402 (the backend must be chosen first)
import numpy as np  # noqa: E402

from tfsal.explain.report import ASPECTS, aspect_members, r2_score  # noqa: E402
from tfsal.io_utils import atomic_path  # noqa: E402
from tfsal.visualize import write_png  # noqa: E402

WIDTH = 10.0
DPI = 100
# The contribution maps' colours: red raises saliency, blue lowers it, white is 0.
GROUP_COLOURS = "RdBu_r"
GROUP_COLOUR_BAR = "group-colour-bar.png"


def _save(figure, path: Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        # No bbox_inches="tight": the constrained layout already fits the figure, and
        # "tight" draws every figure twice (half of the report's time).
        figure.savefig(temporary, format="png", dpi=DPI)
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
    """One image, shown once; per tap a row: its most varying channel and its reconstruction.

    Args:
        path: the PNG to write.
        image: (H, W, 3) RGB in [0, 255].
        activations: tap -> (h, w, C) the parent's activations for this image.
        reconstructions: tap -> (h, w, C) the explainable model's reconstructions.
        r2: tap -> the tap's validation R².

    Returns:
        tap -> ``{"channel", "r2_here", "activation", "reconstruction"}``: the plotted
        maps and the R² of the shown channel on this image; and ``"panels"``: the
        figure's panels, row by row.
    """
    taps = list(activations)
    # The image spans every row of the first column; each tap's pair shares a scale.
    panels = [["image", f"{tap}/activation", f"{tap}/reconstruction"] for tap in taps]
    figure, axes = plt.subplot_mosaic(
        panels,
        figsize=(WIDTH, 2.4 * len(taps)),
        width_ratios=(1.2, 1, 1),
        layout="constrained",
    )
    axes["image"].imshow(np.clip(image, 0, 255).astype(np.uint8))
    axes["image"].set_title("image", fontsize=9)
    axes["image"].axis("off")
    plotted = {"panels": panels}
    for tap in taps:
        activation, reconstruction = activations[tap], reconstructions[tap]
        channel = int(activation.reshape(-1, activation.shape[-1]).var(axis=0).argmax())
        both = np.stack([activation[..., channel], reconstruction[..., channel]])
        low, high = float(both.min()), float(both.max())
        # The tap's validation R² pools every channel and image; the shown channel on
        # this image can be far better or worse, so both are given.
        here = r2_score(both[1][..., None], both[0][..., None])
        titles = {
            "activation": f"{tap} channel {channel}: activation",
            "reconstruction": f"reconstruction: R² {here:.2f} here\n(tap's validation R² "
            f"{r2[tap]:.2f})",
        }
        pair = [axes[f"{tap}/{kind}"] for kind in titles]
        for axis, title, values in zip(pair, titles.values(), both, strict=True):
            shown = axis.imshow(values, cmap="viridis", vmin=low, vmax=high)
            axis.set_title(title, fontsize=9)
            axis.set_xticks([])
            axis.set_yticks([])
        figure.colorbar(shown, ax=pair, label="activation (unitless)", fraction=0.05)
        plotted[tap] = {
            "channel": channel,
            "r2_here": here,
            "activation": both[0].round(5).tolist(),
            "reconstruction": both[1].round(5).tolist(),
        }
    _save(figure, path)
    return plotted


def importance_figure(
    path, importance: dict, saliency_drop: dict | None, r2_drop_method: str = "refit"
) -> dict:
    """Bars per aspect: weight share and R² drop per tap, saliency CC drop.

    Args:
        path: the PNG to write.
        importance: tap -> aspect -> label -> ``{"weight_share", "r2_drop"}``.
        saliency_drop: aspect -> label -> CC drop, or ``None`` (a ``decoder``
            readout): the third column is then left out.
        r2_drop_method: how the R² drop was measured (``report.R2_DROP_METHODS``),
            named on its axis.

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
    r2_label = {"refit": "validation R² drop, refitted", "zeroed": "R² drop, not refitted"}
    ylabels = ("share of |weight| × spread", r2_label[r2_drop_method], "saliency CC drop")
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


def contribution_figure(path, images: np.ndarray, contributions: np.ndarray, names, shown):
    """Every image in a row: the image, its total logits and the ``shown`` groups' maps.

    One column per map, on one symmetric colour scale for all the images (one colour
    bar per column), so that rows compare as well as columns.

    Args:
        path: the PNG to write.
        images: (B, H, W, 3) RGB in [0, 255].
        contributions: (B, H, W, G) the images' contributions.
        names: the G group names.
        shown: labels of ``contribution_groups(names)`` to draw.

    Returns:
        ``(per_image, limits)``: per image, label -> ``{"min", "max", "mean"}`` of
        the plotted map (the maps are image-sized); and label -> the colour scale's
        limit L (the column spans [-L, L]).
    """
    groups = contribution_groups(names)
    maps = {"total (logits)": contributions.sum(axis=-1)}
    maps.update({label: contributions[..., groups[label]].sum(axis=-1) for label in shown})
    rows, columns = len(images), len(maps) + 1
    height, width = images.shape[1:3]
    figure, axes = plt.subplots(
        rows,
        columns,
        figsize=(WIDTH, 0.4 + rows * WIDTH / columns * height / width + 0.6),
        squeeze=False,
        layout="constrained",
    )
    for row, image in enumerate(images):
        axes[row, 0].imshow(np.clip(image, 0, 255).astype(np.uint8))
        axes[row, 0].axis("off")
    axes[0, 0].set_title("image", fontsize=9)
    limits = {}
    for column, (label, values) in enumerate(maps.items(), start=1):
        limit = limits[label] = float(np.abs(values).max()) or 1.0
        for row, group_map in enumerate(values):
            shown_map = axes[row, column].imshow(
                group_map, cmap=GROUP_COLOURS, vmin=-limit, vmax=limit
            )
            axes[row, column].set_xticks([])
            axes[row, column].set_yticks([])
        axes[0, column].set_title(label, fontsize=9)
        bar = figure.colorbar(
            shown_map, ax=axes[:, column], location="bottom", shrink=0.95, aspect=10
        )
        bar.set_ticks([-limit, 0.0, limit], labels=[f"{-limit:.2g}", "0", f"{limit:.2g}"])
        bar.ax.tick_params(labelsize=8)
    figure.supxlabel("logit contribution (log-density units; red raises)", fontsize=9)
    _save(figure, path)
    per_image = [
        {
            label: {"min": float(v[i].min()), "max": float(v[i].max()), "mean": float(v[i].mean())}
            for label, v in maps.items()
        }
        for i in range(rows)
    ]
    return per_image, limits


def render_figures(folder, analysis, groups_per_figure: int = 7) -> dict:
    """Draws every figure of ``analysis`` (a ``tfsal.explain.report.Analysis``) into ``folder``.

    Returns:
        ``{"files": {figure: file name or [per image]}, "plotted": {figure: numbers},
        "groups": {label: [per-image file names]}}``: the group files are single-map
        PNGs for the page's group picker (``group_maps``; their scales are
        ``plotted["groups"]``).
    """
    folder = Path(folder)
    numbers, maps = analysis.numbers, analysis.maps
    r2 = {tap: scores["r2"] for tap, scores in numbers["fidelity"]["taps"].items()}
    files, plotted = {"reconstructions": []}, {}
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
    if names is not None:
        files["contributions"] = "contributions.png"
        plotted["contributions"], plotted["contribution_limits"] = contribution_figure(
            folder / files["contributions"],
            maps["images"],
            maps["contributions"],
            names,
            [*colours, "prior"][:groups_per_figure],
        )
    files["importance"] = "importance.png"
    plotted["importance"] = importance_figure(
        folder / files["importance"],
        numbers["importance"],
        numbers["saliency_cc_drop"],
        numbers["r2_drop_method"],
    )
    files["centre_bias"] = "centre-bias.png"
    plotted["centre_bias"] = centre_bias_figure(
        folder / files["centre_bias"], numbers["centre_bias"]
    )
    if numbers["colour_transform"] is not None:
        files["colour"] = "colour.png"
        plotted["colour"] = colour_figure(folder / files["colour"], numbers["colour_transform"])
    group_files, plotted["groups"] = {}, {}
    if names:
        group_files, plotted["groups"] = group_maps(folder, maps["contributions"], names)
        files["group_colour_bar"] = GROUP_COLOUR_BAR
    return {"files": files, "plotted": plotted, "groups": group_files}


def group_maps(folder, contributions: np.ndarray, names: list[str]) -> tuple[dict, dict]:
    """Per feature group, one PNG per image of its contribution map, for the group picker.

    Drawn without matplotlib (they are about 50 of the report's pictures): each map
    is colour-mapped straight into a PNG, the images of one group on one symmetric
    scale so they compare, and the page prints that scale beside
    ``GROUP_COLOUR_BAR``, written here once.

    Args:
        folder: the report folder.
        contributions: (B, H, W, G) the contributions of the B images.
        names: the G group names.

    Returns:
        ``({label: [file per image]}, {label: {"limit": L}})``: the maps span
        [-L, L] logit units.
    """
    folder = Path(folder)
    colours = matplotlib.colormaps[GROUP_COLOURS]
    ramp = np.tile(np.linspace(0.0, 1.0, 256), (12, 1))
    write_png(folder / GROUP_COLOUR_BAR, _to_rgb(colours(ramp)))
    files, limits = {}, {}
    for label, index in contribution_groups(names).items():
        values = contributions[..., index].sum(axis=-1)
        limit = float(np.abs(values).max()) or 1.0
        limits[label] = {"limit": limit}
        files[label] = []
        for image_index, group_map in enumerate(values):
            name = f"group-{_slug(label)}-{image_index:02d}.png"
            write_png(folder / name, _to_rgb(colours(0.5 + 0.5 * group_map / limit)))
            files[label].append(name)
    return files, limits


def _to_rgb(rgba: np.ndarray) -> np.ndarray:
    return (rgba[..., :3] * 255).round().astype(np.uint8)


def _slug(label: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in label).lower()
