r"""Faithfulness of explanations of a saliency model: deletion and insertion (RISE).

For the most salient region (``serving.region.most_salient_region``: the quarter-size
box of largest predicted mass) of each NUS validation image of a ``training.fit``
run's split (the job's own ``load_split``: seeded, 320/80 for NUS with seed 0), every
attribution method ranks the pixels of the model's canvas and
``serving.faithfulness`` scores the predicted mass in that region while the ranked
pixels are deleted (towards black) or inserted (from RISE's blurred image). Areas
under the curves (trapezoid rule on [0, 1]): lower deletion and higher insertion are
more faithful. A uniformly random ranking is the control. ``loggabor`` (the
explainable model's image-driven contributions) is scored on the explainable model,
which is also explained by the gradient methods, so both models have their own rows.

::

    python benchmarks/faithfulness.py --run /work/runs/nus-unisal \\
        [--explainable SAVEDMODEL_OR_.keras] [--images 80] [--pixels-per-step 224]

writes ``benchmarks/output/faithfulness/`` (git-ignored): ``results.json`` (every
image's AUCs and times), ``summary.json`` and ``curves.png`` (mean curves), and prints
the markdown table of BENCHMARKS.md.
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from serving import attribution, explain, faithfulness  # noqa: E402
from serving.loaded_model import LoadedModel, load_model  # noqa: E402
from serving.region_score import SCORE_INDEX, score_model  # noqa: E402

RANDOM = "random"
CURVE_POINTS = 101  # mean curves are drawn on a common grid
OUT = Path(__file__).resolve().parent / "output" / "faithfulness"


def parent_model(run: Path):
    """The run's deep model as a Keras model (its layers visible to Grad-CAM)."""
    from training import callbacks, configs, trainer

    config = configs.resolve(configs.load_yaml(run / "config.yaml"))
    model = trainer.build_model(config)
    callbacks.restore_state(run / "checkpoints" / callbacks.BEST_WEIGHTS, model, False)
    from tfsal import models

    output_kind = models.model_info(config.model).output
    loaded = LoadedModel(config.model, model, tuple(config.image_size), output_kind, config.resize)
    return loaded, config


def explainable_model(path: Path, like: LoadedModel) -> LoadedModel:
    """The explainable model: a SavedModel (no Grad-CAM) or a ``.keras`` file."""
    if path.suffix == ".keras":
        import keras

        model = keras.saving.load_model(path)
        return LoadedModel(path.stem, model, like.input_size, like.output_kind, like.resize)
    return load_model(path)


def validation_images(config, count: int):
    """The first ``count`` validation images of the job's split, as (id, RGB image)."""
    from training import job

    dataset, _, val_ids = job.load_split(config)
    return [(image_id, dataset.load(image_id).image) for image_id in val_ids[:count]]


def score_images(loaded, methods, images, args):
    """Every image's curves, AUCs and attribution times for one model."""
    import tensorflow as tf
    from tqdm import tqdm

    scorer = score_model(loaded.model, loaded.output_kind)
    batch_score = tf.function(lambda batch: scorer[0](batch, training=False)[:, SCORE_INDEX])
    options = attribution.AttributionOptions(
        ig_steps=args.ig_steps,
        smoothgrad_samples=args.smoothgrad_samples,
        occlusion_patch=args.occlusion_patch,
        seed=args.seed,
    )
    rows = []
    for index, (image_id, image) in enumerate(tqdm(images, desc=loaded.name, unit="image")):
        base = explain.explain_image(loaded, image, [], options=options, scorer=scorer)
        valid = np.zeros(base.canvas.shape[:2], bool)
        valid[base.geometry.content_window] = True
        row = {"image": image_id, "mass": base.mass, "methods": {}}
        for method in [*methods, RANDOM]:
            started = time.perf_counter()
            if method == RANDOM:
                ranking = np.random.default_rng(args.seed + index).random(valid.shape)
            else:
                ranking = explain.explain_image(
                    loaded, image, [method], options=options, region=base.region, scorer=scorer
                ).maps[method]
            seconds = time.perf_counter() - started
            result = {"seconds": seconds}
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
        rows.append(row)
    return rows


def _has_gradcam_layer(loaded: LoadedModel) -> bool:
    try:
        attribution.default_gradcam_layer(loaded.model)
    except ValueError:
        print(f"note: {loaded.name} hides its layers (a SavedModel); no Grad-CAM for it.")
        return False
    return True


def summarise(rows) -> dict:
    """Mean and standard error of each method's AUCs, and its mean time per image."""
    summary = {}
    for method in rows[0]["methods"]:
        entry = {"seconds": float(np.mean([r["methods"][method]["seconds"] for r in rows]))}
        for mode in (faithfulness.DELETION, faithfulness.INSERTION):
            aucs = np.array([r["methods"][method][mode]["auc"] for r in rows])
            entry[mode] = {
                "mean": float(aucs.mean()),
                "sem": float(aucs.std(ddof=1) / np.sqrt(aucs.size)) if aucs.size > 1 else 0.0,
                "curve": np.mean([r["methods"][method][mode]["curve"] for r in rows], 0).tolist(),
            }
        summary[method] = entry
    return summary


def plot(summaries: dict, path: Path) -> None:
    """Mean deletion and insertion curves, one row of panels per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(summaries), 2, figsize=(10, 4 * len(summaries)), squeeze=False)
    grid = np.linspace(0, 1, CURVE_POINTS)
    for row, (model, summary) in enumerate(summaries.items()):
        for column, mode in enumerate((faithfulness.DELETION, faithfulness.INSERTION)):
            ax = axes[row, column]
            for method, entry in summary.items():
                style = {"color": "black", "linestyle": "--"} if method == RANDOM else {}
                label = f"{method} ({entry[mode]['mean']:.3f})"
                ax.plot(grid, entry[mode]["curve"], label=label, **style)
            ax.set_title(f"{model}: {mode} (AUC)")
            ax.set_xlabel(
                "fraction of the image's pixels " + ("deleted" if column == 0 else "inserted")
            )
            ax.set_ylabel("predicted saliency mass in the region")
            ax.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def table(summaries: dict) -> str:
    """The markdown table of BENCHMARKS.md."""
    lines = [
        "| model | method | deletion AUC ↓ | insertion AUC ↑ | attribution s/image |",
        "|---|---|---|---|---|",
    ]
    for model, summary in summaries.items():
        for method, entry in summary.items():
            deletion, insertion = entry[faithfulness.DELETION], entry[faithfulness.INSERTION]
            lines.append(
                f"| {model} | {method} | {deletion['mean']:.3f} ± {deletion['sem']:.3f} | "
                f"{insertion['mean']:.3f} ± {insertion['sem']:.3f} | {entry['seconds']:.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="training.fit run folder")
    parser.add_argument("--explainable", type=Path, help="its explainable model")
    parser.add_argument("--images", type=int, default=80, help="validation images used")
    parser.add_argument("--pixels-per-step", type=int, default=224, help="RISE: 224")
    parser.add_argument("--steps", type=int, help="fixed steps instead (px/step follows)")
    parser.add_argument("--occlusion-patch", type=int, default=16, help="canvas pixels")
    parser.add_argument("--ig-steps", type=int, default=24)
    parser.add_argument("--smoothgrad-samples", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32, help="step images per call")
    parser.add_argument("--methods", nargs="+", default=list(attribution.METHODS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-parent", action="store_true", help="score only --explainable")
    parser.add_argument(
        "--include",
        type=Path,
        action="append",
        default=[],
        help="results.json of an earlier run to show in the same table and plot",
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    started = time.perf_counter()
    parent, config = parent_model(args.run)
    images = validation_images(config, args.images)
    results = {}
    for earlier in args.include:
        results.update(json.loads(earlier.read_text(encoding="utf-8")))
    if not args.skip_parent:
        results[parent.name] = score_images(parent, args.methods, images, args)
    if args.explainable is not None:
        model = explainable_model(args.explainable, parent)
        methods = [m for m in args.methods if m != "gradcam" or _has_gradcam_layer(model)]
        results[model.name] = score_images(model, [*methods, explain.LOGGABOR], images, args)
    summaries = {name: summarise(rows) for name, rows in results.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results), encoding="utf-8")
    settings = {k: str(v) for k, v in vars(args).items()}
    payload = {"settings": settings, "seconds": time.perf_counter() - started}
    (args.out / "summary.json").write_text(
        json.dumps({**payload, "summary": summaries}, indent=1), encoding="utf-8"
    )
    plot(summaries, args.out / "curves.png")
    print(table(summaries))
    steps = f"{args.steps} steps" if args.steps else f"{args.pixels_per_step} px/step"
    print(f"\n{len(images)} images, {steps}, wall {payload['seconds']:.0f} s")


if __name__ == "__main__":
    main()
