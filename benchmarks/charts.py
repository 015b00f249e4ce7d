"""Charts the benchmark scripts share, drawn with matplotlib (Agg) into RGB arrays.

The scripts write the arrays with ``tfsal.visualize.write_png``, so every picture
goes through the package's one atomic PNG writer. Import as
``from benchmarks.charts import ...`` after the script has put the repository root
on ``sys.path``.
"""

import numpy as np

# Left and right bar of each pair, either side of the group's tick.
_BAR_OFFSETS = (-0.2, 0.2)
_BAR_WIDTH = 0.4
_DPI = 100


def paired_bar_chart(
    groups: list[str],
    bars: tuple[tuple[str, list[float]], tuple[str, list[float]]],
    *,
    size: tuple[float, float],
    value_format: str,
    ylabel: str,
    title: str,
    reference: tuple[float, str] | None = None,
    ylim: tuple[float, float] | None = None,
    tick_fontsize: float | None = None,
    legend_options: dict | None = None,
) -> np.ndarray:
    """Two bars per group, each labelled with its value, as an RGB picture.

    Args:
        groups: the tick label of each pair of bars.
        bars: the left and the right bar of every group, as ``(legend label, one
            value per group)``.
        size: ``(width, height)`` of the figure in inches (100 dpi).
        value_format: the ``%``-format of the label above each bar, e.g. ``"%.3f"``.
        ylabel: the y axis label.
        title: the chart's title.
        reference: ``(y, legend label)`` of a dashed horizontal line, e.g. a target.
        ylim: the y axis range; ``None`` lets matplotlib choose.
        tick_fontsize: the groups' font size; ``None`` for matplotlib's.
        legend_options: further ``Axes.legend`` arguments (the legend is always
            small and unframed).

    Returns:
        The chart as an ``(H, W, 3)`` uint8 array.

    Raises:
        ValueError: if a bar does not have one value per group.
    """
    for label, values in bars:
        if len(values) != len(groups):
            raise ValueError(
                f"Bar {label!r} needs one value per group ({len(groups)}). "
                f"Received: {len(values)} values"
            )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    positions = np.arange(len(groups))
    figure, axes = plt.subplots(figsize=size, dpi=_DPI)
    for offset, (label, values) in zip(_BAR_OFFSETS, bars, strict=True):
        drawn = axes.bar(positions + offset, values, width=_BAR_WIDTH, label=label)
        axes.bar_label(drawn, fmt=value_format, fontsize=8)
    if reference is not None:
        height, label = reference
        axes.axhline(height, color="0.4", linestyle="--", linewidth=1, label=label)
    if ylim is not None:
        axes.set_ylim(*ylim)
    tick_options = {} if tick_fontsize is None else {"fontsize": tick_fontsize}
    axes.set_xticks(positions, groups, **tick_options)
    axes.set_ylabel(ylabel)
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=8, frameon=False, **(legend_options or {}))
    axes.spines[["top", "right"]].set_visible(False)
    figure.tight_layout()
    figure.canvas.draw()
    picture = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
    plt.close(figure)
    return picture
