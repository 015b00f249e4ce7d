"""The stages of the main job behind ``python -m training.fit``.

``run(config)`` checks every input before the first epoch (model, data set, image
size, output folder), then trains, derives the explainable model, evaluates,
exports and reports, printing where each output went. ``training.derive`` reuses
the derive, evaluate and export stages on a finished run.
"""

import dataclasses
import json
import time
from pathlib import Path

import tensorflow as tf

import tfsal
from serving import server_config
from serving.export import export_model
from serving.predictor import predictor_from_function, resolve_model
from tfsal import explain, models
from tfsal.conventions import SALIENCY
from tfsal.data import check_records, open_dataset, split_ids
from tfsal.evaluation import evaluate_models
from tfsal.io_utils import atomic_write_text, check_writable_folder
from training import callbacks, configs, distributed, recipes, run_report, trainer
from training.explainable_stage import (
    check_derivation,
    derive_explainable,
    explainable_name,
    tapped_parent,
)

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
    explainable_export: Path | None = None
    derivation: Path | None = None
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
    outputs = RunOutputs(out, out / configs.CONFIG_FILE, out / CHECKPOINTS, out / LOGS)
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
    dataset = open_dataset(config.data, **recipes.GENERATED_DATA_OPTIONS.get(config.data, {}))
    train_ids, val_ids = split_images(config, dataset.ids())
    return dataset, train_ids, val_ids


def split_images(config: configs.FitConfig, image_ids) -> tuple[list[str], list[str]]:
    """The run's seeded split of its data set's images: (training, validation) ids.

    The same settings give the same split, so ``training.derive`` and
    ``training.evaluate`` find the run's validation images again.

    Raises:
        ValueError: for too few images or a split that leaves a subset empty.
    """
    image_ids = list(image_ids)
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
    return split["train"], split["val"]


def check_data(config: configs.FitConfig, dataset, image_ids: list[str]) -> bool:
    """Reads every record of a data set on disk once, before the first epoch.

    A bad file is then named here, not in a TensorFlow traceback mid-epoch. Generated
    data sets (``popout``) have no files: their records come from this package's own
    code, and checking the default run's 2000 arrays cost about 5 s of its budget.

    Returns:
        Whether the records were checked.

    Raises:
        RecordCheckError: naming the records that cannot be used.
    """
    if not dataset.requires_path:
        return False
    check_records(dataset, image_ids, config.image_size, config.resize)
    return True


def _saliency_function(model):
    @tf.function
    def saliency(batch):
        return model(batch, training=False)[SALIENCY]

    return saliency


def evaluate(config, dataset, val_ids, model, explainable=None) -> dict:
    """Scores the model, its explainable model and the baselines (evaluation schema)."""
    kind = models.model_info(config.model).output
    candidates = {config.model: model}
    if explainable is not None:
        candidates[explainable_name(config)] = explainable
    predictors = {
        name: predictor_from_function(
            _saliency_function(candidate), config.image_size, kind, resize=config.resize
        )
        for name, candidate in candidates.items()
    }
    for baseline in BASELINES:
        predictors.update(resolve_model(baseline))
    return evaluate_models(dataset, val_ids, predictors, seed=config.seed)


def export(config: configs.FitConfig, model, outputs: RunOutputs, name: str | None = None) -> Path:
    """Exports the model for TF Serving to ``export/<name>/<next version>/``.

    ``export/`` also gets TF Serving's configuration files (``serving.server_config``),
    so it can be mounted as the Docker image's ``/models`` as it is.

    Args:
        config: the run's configuration.
        model: the deep model, or its explainable model.
        outputs: the run's paths.
        name: the folder under ``export/``; ``None`` for the deep model's name.
    """
    name = name or config.model
    metadata = {"model": name, run_report.VERSION_KEY: tfsal.__version__}
    if name != config.model:
        metadata["parent"] = config.model
    groups = None
    if name != config.model and config.derive.readout == "linear":
        groups = explain.group_names(model)  # names of the contribution channels
    version = export_model(
        model,
        outputs.out / EXPORT,
        name,
        input_size=config.image_size,
        output=models.model_info(config.model).output,
        resize=config.resize,
        metadata=metadata,
        contribution_groups=groups,
    )
    server_config.write_server_configs(outputs.out / EXPORT)
    return version


def write_metrics(outputs: RunOutputs, metrics: dict, val_count: int) -> None:
    """Writes metrics.json atomically and prints every model's scores."""
    outputs.metrics = outputs.out / METRICS_FILE
    atomic_write_text(outputs.metrics, json.dumps(metrics, indent=2))
    print(f"evaluate: {val_count} validation images -> {outputs.metrics}")
    for name, scores in metrics["results"].items():
        shown = ", ".join(f"{k} {v:.3f}" for k, v in scores.items() if isinstance(v, float))
        print(f"  {name}: {shown}")


def write_report(
    config, outputs: RunOutputs, dataset, val_ids, model, metrics, details, **explained
) -> Path:
    """Stage 5: the run's page (``run_report.write_page``); returns its index.html.

    ``explained``: ``explainable``, ``fidelity`` and ``statistics``, as
    ``write_page`` takes them (none for a page without an explainable model).
    """
    parent = tapped_parent(config, model)[0] if explained.get("explainable") else None
    outputs.report = run_report.write_page(
        config, outputs.out / REPORT, dataset, val_ids, model, metrics, details, parent, **explained
    )
    return outputs.report


class StageClock:
    """Wall and CPU seconds per stage of the job, so a slow run says where time went.

    CPU seconds are the process's, over all its threads: on a shared machine they
    are the better measure of what a stage costs.
    """

    def __init__(self):
        self.started = self.last = (time.monotonic(), time.process_time())
        self.seconds: dict[str, tuple[float, float]] = {}

    def lap(self, stage: str) -> None:
        """Books the wall and CPU time since the previous lap to ``stage``."""
        now = (time.monotonic(), time.process_time())
        wall, cpu = self.seconds.get(stage, (0.0, 0.0))
        self.seconds[stage] = (wall + now[0] - self.last[0], cpu + now[1] - self.last[1])
        self.last = now

    def total(self) -> float:
        """Wall seconds since the clock started."""
        return time.monotonic() - self.started[0]

    def summary(self) -> str:
        """E.g. ``"check 6 s (CPU 5 s), train 181 s (CPU 290 s), ..."``."""
        return ", ".join(
            f"{stage} {wall:.0f} s (CPU {cpu:.0f} s)" for stage, (wall, cpu) in self.seconds.items()
        )


def run(config: configs.FitConfig, resume: bool = False) -> RunOutputs:
    """Runs every stage of the main job; returns where the outputs went."""
    clock = StageClock()
    config = configs.resolve(config)
    strategy = distributed.choose_strategy(config.strategy)
    chief = distributed.is_chief(strategy)
    outputs, resume_from = prepare_output(config, resume)
    dataset, train_ids, val_ids = load_split(config)
    check_data(config, dataset, [*train_ids, *val_ids])
    check_derivation(config)
    clock.lap("check")
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
    clock.lap("train")
    derivation = derive_explainable(
        config, result.model, dataset, train_ids, val_ids, outputs, strategy
    )
    clock.lap("derive")
    if not chief:
        return outputs
    explainable = derivation.model if derivation else None

    metrics = evaluate(config, dataset, val_ids, result.model, explainable)
    write_metrics(outputs, metrics, len(val_ids))
    clock.lap("evaluate")

    outputs.export = export(config, result.model, outputs)
    print(f"export: SavedModel -> {outputs.export}")
    if explainable is not None:
        outputs.explainable_export = export(
            config, explainable, outputs, name=explainable_name(config)
        )
        print(f"export: explainable SavedModel -> {outputs.explainable_export}")
    clock.lap("export")

    details = {
        "output folder": outputs.out,
        "best epoch": f"{result.best_epoch} of {result.epochs_run}",
        "exported model": outputs.export,
        "explainable model": outputs.explainable_export or "not derived",
        "wall time": f"{clock.total():.0f} s",
    }
    write_report(
        config,
        outputs,
        dataset,
        val_ids,
        result.model,
        metrics,
        details,
        explainable=explainable,
        fidelity=derivation.fidelity if derivation else None,
        statistics=derivation.statistics if derivation else None,
    )
    print(f"report: {outputs.report}")
    clock.lap("report")
    print(f"done in {clock.total():.0f} s ({clock.summary()}); everything is in {outputs.out}")
    return outputs
