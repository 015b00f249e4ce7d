"""The stages of the main job behind ``python -m training.fit``.

``run(config)`` checks every input before the first epoch (model, data set, image
size, output folder), then trains, derives (not yet available), evaluates,
exports and reports, printing where each output went.
"""

import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from serving import constants
from serving.predictor import predictor_from_function, resolve_model
from tfsal import models
from tfsal.conventions import LOG_DENSITY, SALIENCY
from tfsal.data import check_records, open_dataset, split_ids
from tfsal.data.pipeline import make_pipeline
from tfsal.evaluation import evaluate_models
from tfsal.io_utils import atomic_directory, atomic_write_text, check_writable_folder
from training import callbacks, configs, distributed, report_page, trainer

CHECKPOINTS, LOGS, EXPORT, REPORT = "checkpoints", "logs", "export", "report"
METRICS_FILE = "metrics.json"
BASELINES = ("baseline:centre-bias", "baseline:spectral-residual")


@dataclasses.dataclass
class RunOutputs:
    """Where a run's outputs went (every path inside ``out``)."""

    out: Path
    config: Path
    checkpoints: Path
    logs: Path
    metrics: Path | None = None
    export: Path | None = None
    report: Path | None = None


def prepare_output(config: configs.FitConfig, resume: bool) -> tuple[RunOutputs, Path | None]:
    """Checks the output folder against ``--resume``; returns paths and resume point.

    Raises:
        ValueError: if the folder cannot be written (a file, a read-only place), holds
            another run's checkpoints, or checkpoints without ``--resume``.
        CheckpointError: if the last checkpoint is unreadable.
    """
    out = Path(config.out)
    check_writable_folder(out, "--out")
    outputs = RunOutputs(out, out / "config.yaml", out / CHECKPOINTS, out / LOGS)
    existing = callbacks.list_checkpoints(outputs.checkpoints)
    if existing and not resume:
        raise ValueError(
            f"{out} already holds the checkpoints of a run (last: {existing[-1].name}). "
            "Pass --resume to continue it, or choose another --out."
        )
    if not existing:
        if resume:
            print(f"note: no checkpoint in {outputs.checkpoints}; starting from scratch.")
        return outputs, None
    for leftover in outputs.checkpoints.glob(".*.tmp"):
        leftover.unlink()  # a write cut short by a kill (never renamed into place)
    latest = existing[-1]
    record, _, _ = callbacks.read_state(latest)
    expected = configs.run_identity(config)
    found = record.get("identity", {})
    different = sorted(key for key in expected if found.get(key) != expected[key])
    if different:
        details = ", ".join(f"{k}: {found.get(k)!r} there, {expected[k]!r} here" for k in different)
        raise ValueError(
            f"{out} holds the checkpoints of a different run ({details}). "
            "Choose another --out, or resume with the same settings."
        )
    return outputs, latest


def load_split(config: configs.FitConfig):
    """Opens the data set and splits it into training and validation images.

    Raises:
        ValueError: for an unknown format, an empty data set or a bad split.
    """
    dataset = open_dataset(config.data, **configs.GENERATED_DATA_OPTIONS.get(config.data, {}))
    image_ids = list(dataset.ids())
    if config.max_images:
        image_ids = image_ids[: config.max_images]
    if len(image_ids) < 2:
        raise ValueError(
            f"Data set {config.data!r} has {len(image_ids)} image(s); training needs at "
            "least 2 (one to train on, one to validate)."
        )
    if config.train_size is not None:
        sizes = {"train": config.train_size, "val": config.val_size}
    else:
        sizes = {"train": 1 - config.val_fraction, "val": config.val_fraction}
    split = split_ids(image_ids, sizes, seed=config.seed)
    if not split["train"] or not split["val"]:
        raise ValueError(
            f"The split {sizes} of {len(image_ids)} images leaves a subset empty; "
            "change val_fraction or train_size/val_size."
        )
    return dataset, split["train"], split["val"]


def derive_explainable(config: configs.FitConfig, model, outputs: RunOutputs) -> None:
    """Stage 2 (later issue): fit the log-Gabor reconstructions and the readout."""
    print(
        "derive: the explainable model is not yet available in this version of tfsal; "
        "skipped (no export/<model>_explainable is written)."
    )


def evaluate(config, dataset, val_ids, model) -> dict:
    """Scores the model and the baselines on the validation images (evaluation schema)."""
    serve = tf.function(lambda batch: model(batch, training=False)[SALIENCY])
    predictors = {
        config.model: predictor_from_function(
            serve,
            config.image_size,
            models.model_info(config.model).output,
            resize=config.resize,
        )
    }
    for baseline in BASELINES:
        predictors.update(resolve_model(baseline))
    return evaluate_models(dataset, val_ids, predictors, seed=config.seed)


def export(config: configs.FitConfig, model, outputs: RunOutputs) -> Path:
    """Exports a SavedModel atomically to ``export/<model>/<next version>/``."""
    base = outputs.out / EXPORT / config.model
    versions = [int(p.name) for p in base.glob("*") if p.is_dir() and p.name.isdigit()]
    destination = base / str(max(versions, default=0) + 1)
    metadata = {
        "model": config.model,
        "output": models.model_info(config.model).output,
        "input_size": list(config.image_size),
        "resize": config.resize,
    }
    with atomic_directory(destination) as folder:
        model.export(str(folder), format="tf_saved_model", verbose=False)
        atomic_write_text(
            folder / constants.METADATA_DIR / constants.METADATA_FILE,
            json.dumps(metadata, indent=2),
        )
    return destination


def _report_samples(config, dataset, val_ids, model) -> list[dict]:
    chosen = val_ids[: config.report_samples]
    if not chosen:
        return []
    batches = make_pipeline(
        dataset,
        chosen,
        image_size=tuple(config.image_size),
        resize=config.resize,
        batch_size=len(chosen),
    )
    images, targets = next(iter(batches))
    saliency = model.predict(images, verbose=0)[SALIENCY][..., 0]
    if models.model_info(config.model).output == LOG_DENSITY:
        saliency = np.exp(saliency)
    density = targets[SALIENCY].numpy()[..., 0]
    return [
        {"image_id": i, "image": im, "saliency": s, "density": d}
        for i, im, s, d in zip(chosen, images.numpy(), saliency, density, strict=True)
    ]


def run(config: configs.FitConfig, resume: bool = False) -> RunOutputs:
    """Runs every stage of the main job; returns where the outputs went."""
    started = time.monotonic()
    config = configs.resolve(config)
    strategy = distributed.choose_strategy(config.strategy)
    chief = distributed.is_chief(strategy)
    outputs, resume_from = prepare_output(config, resume)
    dataset, train_ids, val_ids = load_split(config)
    # Every record once, before the first epoch: a bad file is named here, not in a
    # TensorFlow traceback mid-epoch.
    check_records(dataset, [*train_ids, *val_ids], config.image_size, config.resize)
    if chief:
        atomic_write_text(outputs.config, configs.to_yaml(config))
    print(
        f"train: {config.model} on {config.data} ({len(train_ids)} training, "
        f"{len(val_ids)} validation images) at {config.image_size[0]}x{config.image_size[1]}, "
        f"{config.epochs} epochs, batch {config.batch_size}, "
        f"{strategy.num_replicas_in_sync} replica(s); config in {outputs.config}"
    )
    result = trainer.train(
        config,
        dataset,
        train_ids,
        val_ids,
        outputs.checkpoints,
        outputs.logs,
        strategy,
        resume_from=resume_from,
    )
    print(
        f"train: done after {result.epochs_run} epoch(s); best epoch {result.best_epoch}; "
        f"checkpoints in {outputs.checkpoints}, TensorBoard logs in {outputs.logs}"
    )
    if not chief:
        return outputs
    derive_explainable(config, result.model, outputs)

    metrics = evaluate(config, dataset, val_ids, result.model)
    outputs.metrics = outputs.out / METRICS_FILE
    atomic_write_text(outputs.metrics, json.dumps(metrics, indent=2))
    print(f"evaluate: {len(val_ids)} validation images -> {outputs.metrics}")
    for name, scores in metrics["results"].items():
        shown = ", ".join(f"{k} {v:.3f}" for k, v in scores.items() if isinstance(v, float))
        print(f"  {name}: {shown}")

    outputs.export = export(config, result.model, outputs)
    print(f"export: SavedModel -> {outputs.export}")

    outputs.report = report_page.write_report(
        outputs.out / REPORT,
        f"tfsal run: {config.model} on {config.data}",
        metrics,
        _report_samples(config, dataset, val_ids, result.model),
        {
            "output folder": outputs.out,
            "best epoch": f"{result.best_epoch} of {result.epochs_run}",
            "exported model": outputs.export,
            "explainable model": "not yet available",
            "wall time": f"{time.monotonic() - started:.0f} s",
        },
    )
    print(f"report: {outputs.report}")
    print(f"done in {time.monotonic() - started:.0f} s; everything is in {outputs.out}")
    return outputs
