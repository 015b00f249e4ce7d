"""The run report of the main job: ``<out>/report/index.html`` and overlay PNGs.

One self-contained page: the validation metrics of every model and baseline (from
``metrics.json``), and for a few validation images the image, the model's saliency
as a heat-map overlay, and the ground-truth density overlay.
"""

import html
import json
from pathlib import Path

import numpy as np

from tfsal.io_utils import atomic_write_text
from tfsal.metrics import LOWER_IS_BETTER
from tfsal.visualize import heatmap, overlay, write_png

COLOUR_BAR = "colour-bar.png"


def _metrics_table(metrics: dict) -> str:
    results = metrics.get("results", {})
    if not results:
        return "<p>No metrics.</p>"
    columns = list(next(iter(results.values())))
    best = {}
    for column in columns:
        values = [row[column] for row in results.values() if _is_number(row.get(column))]
        if values:
            best[column] = min(values) if column in LOWER_IS_BETTER else max(values)
    header = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    rows = []
    for name, row in results.items():
        cells = []
        for column in columns:
            value = row.get(column)
            text = f"{value:.3f}" if _is_number(value) else html.escape(str(value))
            if _is_number(value) and value == best.get(column):
                text = f"<b>{text}</b>"
            cells.append(f"<td>{text}</td>")
        rows.append(f"<tr><th>{html.escape(name)}</th>{''.join(cells)}</tr>")
    return f"<table><tr><th>model</th>{header}</tr>{''.join(rows)}</table>"


def _is_number(value) -> bool:
    return isinstance(value, int | float) and np.isfinite(value)


def write_report(
    folder: str | Path,
    title: str,
    metrics: dict,
    samples: list[dict],
    details: dict[str, str],
    interpretation: str = "",
) -> Path:
    """Writes the report page and its images.

    Args:
        folder: the report folder (created).
        title: the page heading.
        metrics: the ``metrics.json`` content.
        samples: dicts with ``image_id``, ``image`` (h, w, 3), ``saliency`` (h, w,
            the model's density) and ``density`` (h, w, ground truth).
        details: name -> value lines shown above the table (paths, settings).
        interpretation: HTML of the explainable model's sections (see
            ``training.interpretation_page``), placed after the metrics.

    Returns:
        The path of ``index.html``.
    """
    folder = Path(folder)
    figures = []
    for index, sample in enumerate(samples):
        names = {}
        for kind, picture in (
            ("image", np.clip(sample["image"], 0, 255).astype(np.uint8)),
            ("model", overlay(sample["image"], sample["saliency"])),
            ("truth", overlay(sample["image"], sample["density"])),
        ):
            names[kind] = f"sample-{index:02d}-{kind}.png"
            write_png(folder / names[kind], picture)
        caption = html.escape(str(sample["image_id"]))
        figures.append(
            "<figure>"
            + "".join(f'<img src="{names[k]}" alt="{caption} {k}">' for k in names)
            + f"<figcaption>{caption}: image, model saliency, ground truth</figcaption></figure>"
        )
    colour_bar = ""
    if samples:
        # The overlays' colour map, once: each map is min-max normalised per image.
        write_png(folder / COLOUR_BAR, heatmap(np.tile(np.linspace(0.0, 1.0, 256), (12, 1))))
        colour_bar = (
            f'<p class="colour-bar">Overlay colours: lowest <img src="{COLOUR_BAR}" '
            'alt="colour bar, blue (lowest) to red (highest)"> highest saliency of each map '
            "(every map is scaled to its own range; blue is the lowest, not zero).</p>"
        )
    listing = "".join(
        f"<li>{html.escape(key)}: <code>{html.escape(str(value))}</code></li>"
        for key, value in details.items()
    )
    lower = html.escape(", ".join(sorted(LOWER_IS_BETTER)))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px; }}
body {{ max-width: 1100px; }} figure {{ display: inline-block; margin: 0 1em 1em 0; }}
img {{ width: 200px; margin-right: 2px; }} img.wide {{ width: auto; max-width: 100%; }}
img.group-map {{ width: 320px; }} p {{ max-width: 60em; }}
p.colour-bar img {{ width: 256px; height: 12px; vertical-align: middle; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<ul>{listing}</ul>
<h2>Validation metrics ({html.escape(str(metrics.get("n_images", "?")))} images of
{html.escape(str(metrics.get("dataset", "?")))})</h2>
{_metrics_table(metrics)}
<p>Best value per column in bold ({lower}: lowest).</p>
{interpretation}
<h2>Samples</h2>
{colour_bar}
{"".join(figures) or "<p>No samples.</p>"}
<details><summary>metrics.json</summary><pre>{html.escape(json.dumps(metrics, indent=2))}</pre>
</details>
</body></html>
"""
    index = folder / "index.html"
    atomic_write_text(index, page)
    return index
