r"""Pop-out: which feature groups make the singleton salient in the explainable model.

On a pop-out run (``python -m training.fit``, the no-argument run, then
``python -m training.derive RUN_DIR`` if its explainable export lacks ``model.keras``)::

    python benchmarks/popout_contributions.py /tmp/popout-run

For every validation search array, each feature group's contribution to the
explainable model's saliency logits is read on four regions
(``tfsal.explain.region_contributions``): the target, a distractor item at the
same distance from the centre (the mirrored grid cell, so the centre prior favours
neither), the background (away from every item), and the target against that
distractor (what tells them apart). For each, the shares of the positive elevation
carried by luminance, chroma and prior groups, by the oriented band-pass groups,
and, for orientation singletons, by the orientation the target bar excites and the
one the distractor bars excite. Averaged per singleton family; printed as markdown
tables, written to ``<RUN_DIR>/popout_contributions.json`` and ``.png``.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
import scipy.ndimage  # noqa: E402

from serving import constants  # noqa: E402
from tfsal.conventions import CONTRIBUTIONS  # noqa: E402
from tfsal.data import popout  # noqa: E402
from tfsal.data.pipeline import make_pipeline  # noqa: E402
from tfsal.explain import group_names  # noqa: E402
from tfsal.explain import region_contributions as regions  # noqa: E402
from tfsal.explain.report import parse_group  # noqa: E402
from tfsal.io_utils import atomic_path, atomic_write_text  # noqa: E402
from training import configs, job  # noqa: E402
from training import report as run_report  # noqa: E402

REGIONS = ("target", "distractor", "background", "target_vs_distractor")
REGION_LABELS = {
    "target": "target",
    "distractor": "distractor",
    "background": "background",
    "target_vs_distractor": "target minus\ndistractor",
}


def mirrored_distractor(stimulus: popout.PopoutStimulus) -> tuple[int, int]:
    """The grid cell point-symmetric to the target's (its neighbour for the centre cell)."""
    row, col = stimulus.target_cell
    cell = (popout.GRID - 1 - row, popout.GRID - 1 - col)
    return (row, col - 1) if cell == stimulus.target_cell else cell


def region_weights(stimulus: popout.PopoutStimulus, size: tuple[int, int]) -> dict:
    """Coverage in [0, 1] of the target, the mirrored distractor and the background.

    The masks are area-resized to the model's (square) resolution, so items a few
    pixels wide keep their partial pixels. The background leaves a quarter grid
    pitch around every item.
    """
    items = stimulus.target_mask | stimulus.distractor_mask
    margin = max(1, round(len(items) / popout.GRID / 4))
    background = ~scipy.ndimage.binary_dilation(items, iterations=margin)
    masks = {
        "target": stimulus.target_mask,
        "distractor": stimulus.item_mask(mirrored_distractor(stimulus)),
        "background": background,
    }
    # Square stimuli, square run size: "pad" resizing is a plain resize.
    return {
        name: cv2.resize(mask.astype(np.float32), size[::-1], interpolation=cv2.INTER_AREA)
        for name, mask in masks.items()
    }


def count_orientations(names: list[str]) -> int:
    """The bank's number of orientations, from the feature group names."""
    return len({parse_group(name).get("orientation") for name in names[:-1]} - {None})


def measure(
    maps: np.ndarray, stimulus: popout.PopoutStimulus, names: list[str], orientations: int
) -> dict:
    """One array's shares per region, with the orientations its bars excite."""
    weights = region_weights(stimulus, maps.shape[:2])
    elevation = {name: regions.region_elevation(maps, w) for name, w in weights.items()}
    elevation["target_vs_distractor"] = elevation["target"] - elevation["distractor"]
    result = {
        "family": stimulus.family,
        "difference": stimulus.difference,
        "regions": {name: regions.elevation_shares(elevation[name], names) for name in REGIONS},
    }
    if stimulus.family == "orientation":
        result["target_orientation"] = regions.bar_orientation(stimulus.target_angle, orientations)
        result["distractor_orientation"] = regions.bar_orientation(
            stimulus.distractor_angle, orientations
        )
    return result


def summarise(measured: list[dict], orientations: int) -> dict:
    """Per family and region: mean elevation, colour, band-pass and orientation shares."""
    summary = {}
    for family in popout.FAMILIES:
        rows = [m for m in measured if m["family"] == family]
        if not rows:
            continue
        # Orientation singletons whose two angles excite the same band say nothing.
        apart = [m for m in rows if m.get("target_orientation") != m.get("distractor_orientation")]
        entry = {"arrays": len(rows), "arrays_with_distinct_bands": len(apart), "regions": {}}
        for region in REGIONS:
            shares = [m["regions"][region] for m in rows]
            row = {
                "elevation": float(np.mean([s["elevation"] for s in shares])),
                "band_pass": float(np.mean([s["band_pass"] for s in shares])),
                "strongest_orientation": float(
                    np.mean([max(s["orientation"].values(), default=0.0) for s in shares])
                ),
            }
            for colour in ("luminance", "chroma", "prior"):
                row[colour] = float(np.mean([s["colour"][colour] for s in shares]))
            if family == "orientation" and apart:
                for bars in ("target", "distractor"):
                    row[f"{bars}_orientation"] = float(
                        np.mean(
                            [
                                m["regions"][region]["orientation"][m[f"{bars}_orientation"]]
                                for m in apart
                            ]
                        )
                    )
            entry["regions"][region] = row
        summary[family] = entry
    return {"orientations": orientations, "families": summary}


def plot(summary: dict, path: Path) -> None:
    """Chroma share per family and region; orientation shares of orientation singletons."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = summary["families"]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    width = 0.8 / len(REGIONS)
    for offset, region in enumerate(REGIONS):
        values = [families[f]["regions"][region]["chroma"] for f in families]
        positions = np.arange(len(families)) + (offset - (len(REGIONS) - 1) / 2) * width
        left.bar(positions, values, width, label=REGION_LABELS[region].replace("\n", " "))
    left.set_xticks(np.arange(len(families)), [f"{f} singleton" for f in families])
    left.set_ylabel("chroma groups' share of the rise")
    left.set_ylim(0, 1)
    left.legend(fontsize=8)
    rows = families.get("orientation", {}).get("regions", {})
    if rows and "target_orientation" in rows["target"]:
        keys = {
            "target_orientation": "the target bar's",
            "distractor_orientation": "the distractor bars'",
        }
        for offset, (key, whose) in enumerate(keys.items()):
            values = [rows[region][key] for region in REGIONS]
            positions = np.arange(len(REGIONS)) + (offset - 0.5) * 0.35
            right.bar(positions, values, 0.35, label=f"orientation band of {whose} edges")
        right.axhline(1 / summary["orientations"], color="k", lw=0.8, ls="--", label="uniform")
        right.set_xticks(np.arange(len(REGIONS)), [REGION_LABELS[r] for r in REGIONS])
        right.set_ylabel("share of the band-pass rise")
        right.set_ylim(0, 1)
        right.legend(fontsize=8)
    right.set_title("orientation singletons", fontsize=9)
    left.set_title("which groups raise each region", fontsize=9)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)
    plt.close(figure)


def print_tables(summary: dict) -> None:
    """The summary as the two markdown tables of BENCHMARKS.md."""
    print("| singleton | region | arrays | elevation | luminance | chroma | prior | band-pass |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for family, entry in summary["families"].items():
        for region, row in entry["regions"].items():
            print(
                f"| {family} | {region.replace('_', ' ')} | {entry['arrays']} | "
                f"{row['elevation']:+.2f} | {row['luminance']:.2f} | {row['chroma']:.2f} | "
                f"{row['prior']:.2f} | {row['band_pass']:.2f} |"
            )
    entry = summary["families"].get("orientation")
    if not entry or not entry["arrays_with_distinct_bands"]:
        return
    uniform = 1 / summary["orientations"]
    print(f"\nOrientation singletons ({entry['arrays_with_distinct_bands']} arrays whose bars")
    print(f"excite different bands; uniform share {uniform:.2f}):\n")
    print("| region | target bar's band | distractor bars' band | strongest band |")
    print("| --- | --- | --- | --- |")
    for region, row in entry["regions"].items():
        print(
            f"| {region.replace('_', ' ')} | {row['target_orientation']:.2f} | "
            f"{row['distractor_orientation']:.2f} | {row['strongest_orientation']:.2f} |"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path, help="a pop-out training.fit run folder.")
    args = parser.parse_args()
    config = configs.read_run_config(args.run)
    if config.data != "popout":
        raise SystemExit(f"{args.run} is a run on {config.data!r}, not on pop-out stimuli.")
    export = run_report.latest_explainable(args.run, config.model)
    model = keras.saving.load_model(export / constants.KERAS_MODEL_FILE)
    names = group_names(model)
    dataset, _, val_ids = job.load_split(config)
    batches = make_pipeline(
        dataset, val_ids, image_size=tuple(config.image_size), resize=config.resize, batch_size=8
    )
    orientations = count_orientations(names)
    started = time.process_time()
    measured = []
    for images, _ in batches:
        contributions = keras.ops.convert_to_numpy(model(images)[CONTRIBUTIONS])
        for maps in contributions:
            stimulus = dataset.stimulus(val_ids[len(measured)])
            measured.append(measure(maps, stimulus, names, orientations))
    summary = summarise(measured, orientations)
    summary["export"] = str(export)
    summary["arrays"] = measured
    atomic_write_text(args.run / "popout_contributions.json", json.dumps(summary, indent=1))
    plot(summary, args.run / "popout_contributions.png")
    print(f"{export}: {len(measured)} validation arrays, {time.process_time() - started:.0f} CPU-s")
    print_tables(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
