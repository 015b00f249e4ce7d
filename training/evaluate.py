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
writes CSV (and JSON on request).
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
    parser.add_argument("--data", required=True, help="FORMAT:PATH, or popout (no path).")
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


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the evaluation command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.limit is not None and args.limit < 1:
            raise ValueError(f"--limit must be >= 1. Received: --limit {args.limit}")
        # Checked before any scoring, which can take minutes.
        timestamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        csv_path = Path(args.csv or f"runs/evaluate-{timestamp}.csv")
        check_writable_file(csv_path, "--csv")
        if args.json:
            check_writable_file(args.json, "--json")
        dataset = open_dataset(args.data)
        all_ids = dataset.ids()
        image_ids = all_ids[: args.limit] if args.limit else all_ids
        if not image_ids:
            raise ValueError(f"Data set {args.data!r} holds no images.")
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
    except (ValueError, FileNotFoundError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"\n{report['dataset']}: {report['n_images']} images\n")
    print(format_table(report))
    for metric, reason in report["metrics_absent"].items():
        print(f"{metric} absent: {reason}")
    atomic_write_text(csv_path, format_csv(report))
    print(f"\nCSV written to {csv_path}")
    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=2) + "\n")
        print(f"JSON written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
