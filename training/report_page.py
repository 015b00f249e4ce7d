"""The run report of the main job: ``<out>/report/index.html`` and overlay PNGs.

One self-contained page: the validation metrics of every model and baseline (from
``metrics.json``), and for a few validation images the image, the deep model's and
the explainable model's saliency as heat-map overlays with their scores on that
image, and the ground-truth density overlay with the fixations.
"""

import html
import json
from pathlib import Path

import cv2
import numpy as np

from tfsal import metrics as saliency_metrics
from tfsal.io_utils import atomic_write_text
from tfsal.metrics import LOWER_IS_BETTER
from tfsal.visualize import heatmap, overlay, write_png

COLOUR_BAR = "colour-bar.png"
# Sample file names by map: "model" is the deep model's, as before the explainable
# model's overlay was added.
SAMPLE_FILES = {"saliency": "model", "explainable": "explainable"}
# Where ``mark_stale`` puts its banner: the first thing in the body.
STALE_PLACEHOLDER = "<!-- stale-banner -->"


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


def _with_fixations(picture: np.ndarray, fixations: np.ndarray | None) -> np.ndarray:
    """``picture`` with every fixated pixel white, ringed in black."""
    if fixations is None or not fixations.any():
        return picture
    marked = picture.copy()
    for y, x in np.argwhere(fixations > 0):
        cv2.circle(marked, (int(x), int(y)), 1, (0, 0, 0), -1)
    marked[fixations > 0] = 255
    return marked


def sample_scores(sample: dict, kind: str) -> dict:
    """CC with the ground-truth density and NSS at the fixations of one model's map."""
    scores = {"CC": saliency_metrics.cc(sample[kind], sample["density"])}
    fixations = sample.get("fixations")
    if fixations is not None and fixations.any():
        scores["NSS"] = saliency_metrics.nss(sample[kind], fixations)
    return scores


def _sample_figure(index: int, sample: dict, folder: Path) -> str:
    """One sample's overlays (image, deep, explainable, ground truth) as HTML."""
    image = np.clip(sample["image"], 0, 255).astype(np.uint8)
    pictures = [("image", image, "image")]
    for kind, label in (("saliency", "deep model"), ("explainable", "explainable model")):
        if sample.get(kind) is not None:
            scores = sample_scores(sample, kind)
            text = ", ".join(f"{name} {value:.2f}" for name, value in scores.items())
            pictures.append((kind, overlay(image, sample[kind]), f"{label}: {text}"))
    truth = _with_fixations(overlay(image, sample["density"]), sample.get("fixations"))
    fixated = " and fixations (dots)" if sample.get("fixations") is not None else ""
    pictures.append(("truth", truth, f"ground-truth density{fixated}"))
    cells = []
    for kind, picture, label in pictures:
        name = f"sample-{index:02d}-{SAMPLE_FILES.get(kind, kind)}.png"
        write_png(folder / name, picture)
        cells.append(
            f'<figure class="sample"><img src="{name}" alt="{html.escape(label)}">'
            f"<figcaption>{html.escape(label)}</figcaption></figure>"
        )
    caption = html.escape(str(sample["image_id"]))
    return f'<div class="samples"><p>{caption}</p>{"".join(cells)}</div>'


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
            the deep model's density), ``density`` (h, w, ground truth), and
            optionally ``explainable`` (h, w, the explainable model's density) and
            ``fixations`` (h, w, binary fixation map): each model's overlay gets
            its CC with the density and NSS at the fixations on that image.
        details: name -> value lines shown above the table (paths, settings).
        interpretation: HTML of the explainable model's sections (see
            ``training.interpretation_page``), placed after the metrics.

    Returns:
        The path of ``index.html``.
    """
    folder = Path(folder)
    figures = [_sample_figure(index, sample, folder) for index, sample in enumerate(samples)]
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
    border_note = (
        " border: the mean of the map's outer band (1/32 of the shorter side) over the"
        " map's mean; above 1 is a frame drawn along the image border."
        if any("border" in row for row in metrics.get("results", {}).values())
        else ""
    )
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 4px 8px; }}
body {{ max-width: 1100px; }} figure {{ display: inline-block; margin: 0 1em 1em 0; }}
img {{ width: 200px; margin-right: 2px; }} img.wide {{ width: auto; max-width: 100%; }}
figure.sample {{ margin: 0 0.5em 0.5em 0; vertical-align: top; }}
figure.sample figcaption {{ width: 200px; font-size: 0.9em; }} div.samples p {{ margin: 0; }}
img.group-map, figure.sample img {{ image-rendering: pixelated; }}
img.group-map {{ width: 240px; }} p {{ max-width: 60em; }}
p.colour-bar img {{ width: 256px; height: 12px; vertical-align: middle; }}
p.stale {{ background: #fdd; border: 2px solid #c00; padding: 0.5em; }}
</style></head><body>
{STALE_PLACEHOLDER}
<h1>{html.escape(title)}</h1>
<ul>{listing}</ul>
<h2>Validation metrics ({html.escape(str(metrics.get("n_images", "?")))} images of
{html.escape(str(metrics.get("dataset", "?")))})</h2>
{_metrics_table(metrics)}
<p>Best value per column in bold ({lower}: lowest).{border_note}</p>
<h2>Samples: the deep model and its explainable model on the same images</h2>
<p>Each model's map on the image, with its CC with the ground-truth density and its NSS
at the fixations on that image (higher is better for both).</p>
{colour_bar}
{"".join(figures) or "<p>No samples.</p>"}
{interpretation}
<details><summary>metrics.json</summary><pre>{html.escape(json.dumps(metrics, indent=2))}</pre>
</details>
</body></html>
"""
    index = folder / "index.html"
    atomic_write_text(index, page)
    return index


def mark_stale(folder: str | Path, reason: str) -> bool:
    """Puts a banner saying why at the top of an existing page, atomically.

    For a page that no longer describes the run's model (it was derived again and the
    page not rebuilt); rebuilding the page removes the banner.

    Args:
        folder: the report folder.
        reason: HTML of the banner's text.

    Returns:
        Whether there was a page to mark.
    """
    index = Path(folder) / "index.html"
    try:
        page = index.read_text()
    except FileNotFoundError:
        return False
    banner = f'<p class="stale" id="stale">{reason}</p>'
    if STALE_PLACEHOLDER in page:
        page = page.replace(STALE_PLACEHOLDER, STALE_PLACEHOLDER + banner, 1)
    else:  # a page written before the placeholder existed
        page = page.replace("<body>", "<body>" + banner, 1)
    atomic_write_text(index, page)
    return True
