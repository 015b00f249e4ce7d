r"""Compares saliency models and baselines on a data set with the standard metrics.

```
python -m training.evaluate --data nus:../shared/datasets/nus-scene \\
    --model runs/20260101-120000 --model baseline:centre-bias \\
    --model baseline:spectral-residual --limit 80 --json results.json
```

``--model`` is a SavedModel folder, a run folder of ``training.fit`` (every model
under ``export/<name>/``, newest version), or ``baseline:NAME``, read by
``serving.predictor.resolve_model``. The scoring is ``tfsal.evaluation.evaluate_models``
(every model on the same images, MIT-convention metrics, pop-out metrics on
``popout`` data); this module is its command line: it prints a markdown table and
writes CSV (and JSON on request). Without ``--data`` it scores the data set a run
folder was trained on, opened as the run opened it (``data_to_score``).
"""

import argparse
import csv
import datetime
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from serving.predictor import resolve_model
from tfsal import baselines
from tfsal.data import open_dataset
from tfsal.evaluation import METRICS, evaluate_models
from tfsal.io_utils import atomic_write_text, check_writable_file
from training import configs
from training.command import run_command


def _columns(report: dict) -> list[str]:
    present = {metric for values in report["results"].values() for metric in values}
    extra = sorted(present - set(METRICS))
    return [metric for metric in METRICS if metric in present] + extra


def format_table(report: dict) -> str:
    """Returns the results as a markdown table, one row per model."""
    columns = _columns(report)
    lines = [
        "| model | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for name, values in report["results"].items():
        cells = [f"{values[c]:.3f}" if c in values else "" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_csv(report: dict) -> str:
    """Returns the results as CSV, one row per model."""
    columns = _columns(report)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["model", *columns])
    for name, values in report["results"].items():
        writer.writerow([name, *(values.get(c, "") for c in columns)])
    return buffer.getvalue()


def build_parser() -> argparse.ArgumentParser:
    """Returns the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m training.evaluate",
        description="Score saliency models and baselines on a data set (MIT metrics).",
    )
    parser.add_argument(
        "--data",
        help="FORMAT:PATH, or popout (no path); default: the data set of the run folder "
        "given as --model.",
    )
    parser.add_argument(
        "--model",
        action="append",
        required=True,
        help="a SavedModel folder, a training.fit run folder, or baseline:NAME with NAME in "
        f"{', '.join(baselines.list_baselines())}; repeat to compare several.",
    )
    parser.add_argument("--json", help="write the results as JSON to this file.")
    parser.add_argument(
        "--csv", help="write the table as CSV here (default: runs/evaluate-<time>.csv)."
    )
    parser.add_argument("--limit", type=int, help="score only the first N images.")
    parser.add_argument("--seed", type=int, default=0, help="seed of AUC-Borji/sAUC negatives.")
    return parser


def data_to_score(data: str | None, model_specs: Sequence[str]) -> tuple[str, dict]:
    """Returns the data set spec to score on and the options to open it with.

    A ``training.fit`` run folder among ``model_specs`` records its data set in its
    ``config.yaml``. Scored on that same spec, the run's data set is opened as the
    run opened it: a generated set with the run's ``configs.GENERATED_DATA_OPTIONS``
    (``popout``: 2000 arrays at 128 px), not with the reader's defaults.

    Args:
        data: the ``--data`` value, or ``None`` for the run folders' data set.
        model_specs: the ``--model`` values.

    Raises:
        ValueError: without ``--data`` when no run folder is given, or when the
            run folders were trained on different data sets.
    """
    run_data = {}
    for spec in model_specs:
        config_file = Path(spec) / configs.CONFIG_FILE
        if config_file.is_file():
            run_data[spec] = configs.load_yaml(config_file).data
    if data is None:
        if not run_data:
            raise ValueError(
                "--data is needed unless a --model is a training.fit run folder (then its "
                "data set is scored), e.g. --data nus:PATH or --data popout."
            )
        if len(set(run_data.values())) > 1:
            trained_on = ", ".join(f"{run}: {spec}" for run, spec in run_data.items())
            raise ValueError(
                f"The run folders were trained on different data sets ({trained_on}); "
                "choose one with --data."
            )
        data = next(iter(run_data.values()))
    if data in run_data.values():
        return data, dict(configs.GENERATED_DATA_OPTIONS.get(data, {}))
    return data, {}


def score(args: argparse.Namespace) -> None:
    """Scores the models of ``args`` and writes the table, CSV and JSON."""
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be >= 1. Received: --limit {args.limit}")
    # Checked before any scoring, which can take minutes.
    timestamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    csv_path = Path(args.csv or f"runs/evaluate-{timestamp}.csv")
    check_writable_file(csv_path, "--csv")
    if args.json:
        check_writable_file(args.json, "--json")
    data, options = data_to_score(args.data, args.model)
    dataset = open_dataset(data, **options)
    all_ids = dataset.ids()
    image_ids = all_ids[: args.limit] if args.limit else all_ids
    if not image_ids:
        raise ValueError(f"Data set {data!r} holds no images.")
    rest = all_ids[len(image_ids) :]

    def training_records():
        if not rest:
            raise ValueError(
                "baseline:fitted-centre-bias is fitted on the images not evaluated; use "
                "--limit N below the data set's size to leave some."
            )
        return [dataset.load(image_id) for image_id in rest]

    models = {}
    for spec in args.model:
        for name, predictor in resolve_model(spec, training_records).items():
            if name in models:
                raise ValueError(f"Two models are named {name!r}; rename one folder.")
            models[name] = predictor
    report = evaluate_models(dataset, image_ids, models, seed=args.seed)
    report["data_options"] = options
    opened_with = f" ({', '.join(f'{k}={v}' for k, v in options.items())})" if options else ""
    print(f"\n{report['dataset']}{opened_with}: {report['n_images']} images\n")
    print(format_table(report))
    for metric, reason in report["metrics_absent"].items():
        print(f"{metric} absent: {reason}")
    atomic_write_text(csv_path, format_csv(report))
    print(f"\nCSV written to {csv_path}")
    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=2) + "\n")
        print(f"JSON written to {args.json}")


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the evaluation command; returns the process exit code (2 for bad input)."""
    args = build_parser().parse_args(argv)
    return run_command(lambda: score(args))


if __name__ == "__main__":
    sys.exit(main())
