r"""Faithfulness of explanations of a saliency model: deletion and insertion (RISE).

For the most salient region (``serving.region.most_salient_region``: the quarter-size
box of largest predicted mass) of each NUS validation image of a ``training.fit``
run's split (the job's own ``load_split``: seeded, 320/80 for NUS with seed 0), every
attribution method ranks the pixels of the model's canvas and
``serving.faithfulness`` scores the predicted mass in that region while the ranked
pixels are deleted (towards black) or inserted (from RISE's blurred image), a fixed
number of pixels per step (``--steps`` fixes the count of steps per image instead,
RISE's 224 px per step at 224×224 being 224 steps). Areas under the curves
(trapezoid rule on [0, 1]): lower deletion and higher insertion are more faithful. A
uniformly random ranking is the control. ``loggabor`` (the explainable model's
region-specific contributions, ``serving.contributions``) is scored on the explainable
model, which the gradient methods explain too, so both models have their own rows.

The explainable model is read as a Keras model from the ``model.keras`` saved in its
export (``explainable_keras_model``), so Grad-CAM, which needs layers, applies to both
models.

::

    python benchmarks/faithfulness.py --run /work/runs/nus-unisal \\
        --explainable COPY/export/unisal_explainable/1 [--images 80] [--steps 32]

Each image's results are written as soon as they are done, to
``OUT/images/<model>/<image>.json``; a rerun with the same ``--out`` skips them, so a
killed run continues where it stopped (the settings must match: they are checked).
``--reverse`` works through the images from the last one, so a second process started
on the same ``--out`` shares the work with the first (they meet in the middle).
At the end ``OUT/summary.json``, ``OUT/curves.png`` (mean curves) and ``OUT/table.md``
(the markdown table of BENCHMARKS.md, also printed) summarise every finished image;
``--summary-only`` writes them without scoring more.
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from serving import attribution, constants, explain, faithfulness  # noqa: E402
from serving.loaded_model import LoadedModel, load_model  # noqa: E402
from serving.region_score import SCORE_INDEX, score_model  # noqa: E402
from tfsal.io_utils import atomic_write_text  # noqa: E402

RANDOM = "random"
CURVE_POINTS = 101  # mean curves are drawn on a common grid
OUT = Path(__file__).resolve().parent / "output" / "faithfulness"
# Settings that change the numbers: a resumed run must use the same.
PROTOCOL = ("steps", "pixels_per_step", "ig_steps", "smoothgrad_samples", "occlusion_patch")
PROTOCOL += ("seed",)


def parent_model(run: Path):
    """The run's deep model as a Keras model (its layers visible to Grad-CAM)."""
    from training import callbacks, configs, trainer

    config = configs.resolve(configs.read_run_config(run))
    model = trainer.build_model(config)
    callbacks.restore_state(run / "checkpoints" / callbacks.BEST_WEIGHTS, model, False)
    from tfsal import models

    output_kind = models.model_info(config.model).output
    loaded = LoadedModel(config.model, model, tuple(config.image_size), output_kind, config.resize)
    return loaded, config


def explainable_keras_model(saved: LoadedModel) -> LoadedModel:
    """The explainable SavedModel's Keras model (its layers visible to Grad-CAM).

    Read from the ``model.keras`` the exporter writes into every explainable version,
    and checked to reproduce the SavedModel's saliency.

    Raises:
        SystemExit: if the export has no ``model.keras`` or does not match it.
    """
    import keras

    import tfsal.explain  # noqa: F401  (registers the layers model.keras names)

    path = Path(saved.metadata["path"]) / constants.KERAS_MODEL_FILE
    if not path.is_file():
        raise SystemExit(
            f"error: {path.parent} has no {constants.KERAS_MODEL_FILE} (exported before it "
            "was saved with every explainable model); derive it again with "
            "python -m training.derive RUN_DIR."
        )
    model = keras.saving.load_model(path)
    probe = np.random.default_rng(0).uniform(0, 255, (1, *saved.input_size, 3)).astype("float32")
    ours, theirs = model(probe)["saliency"], saved.model(probe)["saliency"]
    if not np.allclose(np.asarray(ours), np.asarray(theirs), atol=1e-3):
        raise SystemExit(f"error: {path} does not reproduce the SavedModel beside it.")
    return LoadedModel(
        saved.name, model, saved.input_size, saved.output_kind, saved.resize, saved.metadata
    )


def validation_images(config, count: int):
    """The first ``count`` validation images of the job's split, as (id, RGB image)."""
    from training import job

    dataset, _, val_ids = job.load_split(config)
    return [(image_id, dataset.load(image_id).image) for image_id in val_ids[:count]]


def score_image(loaded, scorer, batch_score, methods, image, index, args, options) -> dict:
    """One image's curves, AUCs and attribution times (wall and CPU) for one model."""
    import tensorflow as tf

    base = explain.explain_image(loaded, image, [], options=options, scorer=scorer)
    valid = np.zeros(base.canvas.shape[:2], bool)
    valid[base.geometry.content_window] = True
    row = {"mass": base.mass, "region": list(base.image_box), "methods": {}}
    for method in [*methods, RANDOM]:
        started, cpu_started = time.perf_counter(), time.process_time()
        if method == RANDOM:
            ranking = np.random.default_rng(args.seed + index).random(valid.shape)
        else:
            ranking = explain.explain_image(
                loaded, image, [method], options=options, region=base.region, scorer=scorer
            ).maps[method]
        result = {
            "seconds": time.perf_counter() - started,
            "cpu_seconds": time.process_time() - cpu_started,
        }
        for mode in (faithfulness.DELETION, faithfulness.INSERTION):
            curve = faithfulness.perturbation_curve(
                lambda batch: batch_score(tf.constant(batch)).numpy(),
                base.canvas,
                ranking,
                mode,
                valid=valid,
                pixels_per_step=None if args.steps else args.pixels_per_step,
                steps=args.steps,
                batch_size=args.batch_size,
                seed=args.seed,
            )
            result[mode] = {
                "auc": faithfulness.area_under_curve(curve),
                "curve": faithfulness.resample(curve, CURVE_POINTS).tolist(),
            }
        row["methods"][method] = result
    return row


def score_model_images(loaded, methods, images, args, folder: Path) -> None:
    """Scores every image not yet in ``folder``, writing each result when it is done."""
    import tensorflow as tf
    from tqdm import tqdm

    scorer = score_model(loaded.model, loaded.output_kind)
    batch_score = tf.function(lambda batch: scorer[0](batch, training=False)[:, SCORE_INDEX])
    options = attribution.AttributionOptions(
        gradcam_layer=args.gradcam_layers.get(loaded.name),
        ig_steps=args.ig_steps,
        smoothgrad_samples=args.smoothgrad_samples,
        occlusion_patch=args.occlusion_patch,
        seed=args.seed,
    )
    folder.mkdir(parents=True, exist_ok=True)
    order = list(enumerate(images))[:: -1 if args.reverse else 1]
    for index, (image_id, image) in tqdm(order, desc=loaded.name, unit="image"):
        path = folder / f"{image_id}.json"
        if path.is_file():
            continue
        row = score_image(loaded, scorer, batch_score, methods, image, index, args, options)
        atomic_write_text(path, json.dumps({"image": image_id, **row}))


def summarise(rows) -> dict:
    """Mean and standard error of each method's AUCs, and its mean times per image."""
    summary = {}
    for method in rows[0]["methods"]:
        entries = [r["methods"][method] for r in rows]
        entry = {
            "images": len(rows),
            "seconds": float(np.mean([e["seconds"] for e in entries])),
            "cpu_seconds": float(np.mean([e["cpu_seconds"] for e in entries])),
        }
        for mode in (faithfulness.DELETION, faithfulness.INSERTION):
            aucs = np.array([e[mode]["auc"] for e in entries])
            entry[mode] = {
                "mean": float(aucs.mean()),
                "sem": float(aucs.std(ddof=1) / np.sqrt(aucs.size)) if aucs.size > 1 else 0.0,
                "curve": np.mean([e[mode]["curve"] for e in entries], 0).tolist(),
            }
        summary[method] = entry
    return summary


def plot(summaries: dict, path: Path) -> None:
    """Mean deletion and insertion curves, one row of panels per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tfsal.io_utils import atomic_path

    figure, axes = plt.subplots(len(summaries), 2, figsize=(10, 4 * len(summaries)), squeeze=False)
    grid = np.linspace(0, 1, CURVE_POINTS)
    for row, (model, summary) in enumerate(summaries.items()):
        for column, mode in enumerate((faithfulness.DELETION, faithfulness.INSERTION)):
            ax = axes[row, column]
            for method, entry in summary.items():
                style = {"color": "black", "linestyle": "--"} if method == RANDOM else {}
                label = f"{method} ({entry[mode]['mean']:.3f})"
                ax.plot(grid, entry[mode]["curve"], label=label, **style)
            images = next(iter(summary.values()))["images"]
            ax.set_title(f"{model}: {mode}, mean of {images} images (AUC)")
            ax.set_xlabel(
                "fraction of the image's pixels " + ("deleted" if column == 0 else "inserted")
            )
            ax.set_ylabel("predicted saliency mass in the region")
            ax.legend(fontsize=8)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110)
    plt.close(figure)


def table(summaries: dict) -> str:
    """The markdown table of BENCHMARKS.md."""
    lines = [
        "| model | method | deletion AUC ↓ | insertion AUC ↑ | attribution s/image (CPU s) |",
        "|---|---|---|---|---|",
    ]
    for model, summary in summaries.items():
        for method, entry in summary.items():
            deletion, insertion = entry[faithfulness.DELETION], entry[faithfulness.INSERTION]
            lines.append(
                f"| {model} | {method} | {deletion['mean']:.3f} ± {deletion['sem']:.3f} | "
                f"{insertion['mean']:.3f} ± {insertion['sem']:.3f} | "
                f"{entry['seconds']:.2f} ({entry['cpu_seconds']:.2f}) |"
            )
    return "\n".join(lines)


def check_protocol(out: Path, args) -> None:
    """Records the protocol in ``OUT/settings.json``; refuses to resume with another one."""
    settings = {name: getattr(args, name) for name in PROTOCOL}
    path = out / "settings.json"
    if path.is_file():
        recorded = json.loads(path.read_text(encoding="utf-8"))
        if recorded != settings:
            raise SystemExit(
                f"error: {out} holds results of another protocol ({recorded}); pass the same "
                f"settings ({settings}) or another --out."
            )
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(settings, indent=1))


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="training.fit run folder")
    parser.add_argument("--explainable", type=Path, help="its explainable SavedModel")
    parser.add_argument("--images", type=int, default=80, help="validation images used")
    parser.add_argument("--pixels-per-step", type=int, default=224, help="RISE: 224")
    parser.add_argument("--steps", type=int, help="fixed steps instead (px/step follows)")
    parser.add_argument("--occlusion-patch", type=int, default=16, help="canvas pixels")
    parser.add_argument("--ig-steps", type=int, default=24)
    parser.add_argument("--smoothgrad-samples", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32, help="step images per call")
    parser.add_argument("--methods", nargs="+", default=list(attribution.METHODS))
    parser.add_argument(
        "--gradcam-layer",
        action="append",
        default=[],
        metavar="MODEL=LAYER",
        help="Grad-CAM's layer of a model (default: its last multi-channel 4-D layer)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reverse", action="store_true", help="start from the last image")
    parser.add_argument("--skip-parent", action="store_true", help="score only --explainable")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--summary-only", action="store_true", help="only summarise the images already done"
    )
    return parser


def score(args) -> int:
    """Scores every model's images not yet in ``OUT/images``; returns the image count."""
    parent, config = parent_model(args.run)
    images = validation_images(config, args.images)
    models = [] if args.skip_parent else [(parent, list(args.methods))]
    if args.explainable is not None:
        saved = load_model(args.explainable)
        saved = LoadedModel(
            saved.name,
            saved.model,
            saved.input_size,
            saved.output_kind,
            saved.resize,
            {**saved.metadata, "path": str(args.explainable)},
        )
        models.append((explainable_keras_model(saved), [*args.methods, explain.LOGGABOR]))
    for loaded, methods in models:
        score_model_images(loaded, methods, images, args, args.out / "images" / loaded.name)
    return len(images)


def summarise_folder(args) -> None:
    """Writes ``summary.json``, ``curves.png`` and ``table.md`` from every finished image."""
    summaries = {}
    for folder in sorted((args.out / "images").iterdir()):
        rows = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]
        if rows:
            summaries[folder.name] = summarise(rows)
    settings = json.loads((args.out / "settings.json").read_text(encoding="utf-8"))
    atomic_write_text(
        args.out / "summary.json", json.dumps({"settings": settings, "summary": summaries})
    )
    plot(summaries, args.out / "curves.png")
    markdown = table(summaries)
    atomic_write_text(args.out / "table.md", markdown + "\n")
    print(markdown)


def main() -> None:
    args = build_parser().parse_args()
    args.gradcam_layers = dict(item.split("=", 1) for item in args.gradcam_layer)
    check_protocol(args.out, args)
    started = time.perf_counter()
    if not args.summary_only:
        count = score(args)
        steps = f"{args.steps} steps" if args.steps else f"{args.pixels_per_step} px/step"
        print(f"{count} images, {steps}, wall {time.perf_counter() - started:.0f} s")
    summarise_folder(args)


if __name__ == "__main__":
    main()
