r"""(Re)build the page of a finished run: ``<RUN_DIR>/report/``.

    python -m training.report runs/unisal-nus
    python -m training.report runs/cmrnet --images 4

The page holds the validation metrics of the deep model, its explainable model and
the baselines (``metrics.json``), the explainable model's fidelity
(``derivation.json``), the four aspects of the interpretation report (figures drawn
from the run's best checkpoint and its latest explainable export, measured on the
first validation images; the drop in R² per feature group refitted from
``derivation-statistics.npz`` when the run kept it) and sample overlays of both
models. ``report/report.json`` holds every plotted number. The folder is rebuilt
aside and swapped into place, so a reader sees the old report or the new one, never
half of one.
"""

import argparse
import json
import sys
from pathlib import Path

import tfsal
from serving.constants import KERAS_MODEL_FILE
from training.command import run_command
from training.run_report import (  # noqa: F401  (names of the page, for callers)
    REPORT_JSON,
    VERSION_KEY,
    write_run_report,
)


def latest_explainable(run: Path, model_name: str) -> Path:
    """The newest ``export/<model>_explainable/<version>/`` folder of a run, checked.

    Raises:
        ValueError: if there is none, it lacks its Keras file, or another tfsal
            version made it.
    """
    from serving import constants
    from training import explainable_stage, job

    base = run / job.EXPORT / (model_name + explainable_stage.EXPLAINABLE_SUFFIX)
    versions = sorted((p for p in base.glob("*") if p.name.isdigit()), key=lambda p: int(p.name))
    derive_hint = f"derive one with: python -m training.derive {run}"
    if not versions or not (versions[-1] / KERAS_MODEL_FILE).is_file():
        raise ValueError(
            f"{run} holds no explainable model (no {base}/<version>/{KERAS_MODEL_FILE}); "
            f"{derive_hint}"
        )
    latest = versions[-1]
    metadata_file = latest / constants.METADATA_DIR / constants.METADATA_FILE
    try:
        made_by = json.loads(metadata_file.read_text()).get(VERSION_KEY)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"{metadata_file} is missing or unreadable ({error}); {derive_hint}"
        ) from None
    if made_by != tfsal.__version__:
        raise ValueError(
            f"{latest} was made by tfsal {made_by or 'before version 0.1.0'}, this is tfsal "
            f"{tfsal.__version__}: its layers may differ. Install that version to read it, or "
            f"{derive_hint}."
        )
    return latest


def build_report(run: Path, images: int | None = None) -> Path:
    """Rebuilds ``<run>/report/`` from the run's files; returns the index.html path."""
    import dataclasses

    import keras

    from tfsal.explain import group_refit
    from training import callbacks, configs, derive, explainable_stage, job, trainer

    config = configs.read_run_config(run)
    if images is not None:
        config = dataclasses.replace(config, report_samples=images)
    export = latest_explainable(run, config.model)
    try:
        explainable = keras.saving.load_model(export / KERAS_MODEL_FILE)
    except Exception as error:  # Keras raises many types for a bad file.
        raise ValueError(
            f"{export / KERAS_MODEL_FILE} cannot be read ({type(error).__name__}: {error}); "
            f"derive it again with: python -m training.derive {run}"
        ) from None
    checkpoint = derive.best_checkpoint(run)
    model = trainer.build_model(dataclasses.replace(config, weights=None, encoder_weights=None))
    callbacks.restore_state(checkpoint, model, with_optimizer=False)
    fidelity = _read_json(run / explainable_stage.DERIVATION_FILE, run)
    metrics = _read_json(run / job.METRICS_FILE, run)
    statistics_file = run / group_refit.STATISTICS_FILE
    statistics = None
    if statistics_file.is_file():
        statistics = group_refit.load_statistics(statistics_file)
    dataset, _, val_ids = job.load_split(config)
    print(f"report: {config.model} from {checkpoint} and {export}")
    return job.write_report(
        config,
        job.RunOutputs(run, run / configs.CONFIG_FILE, run / job.CHECKPOINTS, run / job.LOGS),
        dataset,
        val_ids,
        model,
        metrics,
        {"output folder": run, "checkpoint": checkpoint, "explainable model": export},
        explainable=explainable,
        fidelity=fidelity,
        statistics=statistics,
    )


def _read_json(path: Path, run: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(
            f"{path} is missing or unreadable ({error}); rebuild it with "
            f"python -m training.derive {run}"
        ) from None


def main(argv: list[str] | None = None) -> int:
    """Runs the command; returns the process exit code (2 for bad input)."""
    parser = argparse.ArgumentParser(
        prog="python -m training.report",
        description="Rebuild <RUN_DIR>/report/ (metrics, fidelity, interpretation figures).",
    )
    parser.add_argument("run", metavar="RUN_DIR", help="the --out folder of a training.fit run.")
    parser.add_argument("--images", type=int, help="validation images to show (default: config).")
    args = parser.parse_args(argv)

    def rebuild() -> None:
        print(f"report: {build_report(Path(args.run), args.images)}")

    return run_command(rebuild)


if __name__ == "__main__":
    sys.exit(main())
