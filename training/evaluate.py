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

On a run's own data set only the images the run held out are scored by default: its
seeded validation split, found again from its ``config.yaml`` as ``training.fit``,
``training.derive`` and the job's evaluate stage make it (``images_to_score``; with
several runs, the images every one of them held out). ``--all-images`` scores every
image, training images included. The output says which images were scored.
"""

import argparse
import csv
import datetime
import io
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from serving.predictor import model_names, resolve_model
from tfsal import baselines
from tfsal.data import open_dataset
from tfsal.evaluation import METRICS, evaluate_models
from tfsal.io_utils import atomic_write_text, check_writable_file
from training import configs, job, recipes
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
    parser.add_argument(
        "--all-images",
        action="store_true",
        help="on a run's own data set, score every image, its training images included "
        "(default: only the run's validation split).",
    )
    parser.add_argument("--limit", type=int, help="score only the first N images.")
    parser.add_argument("--seed", type=int, default=0, help="seed of AUC-Borji/sAUC negatives.")
    return parser


def data_to_score(data: str | None, model_specs: Sequence[str]) -> tuple[str, dict, dict]:
    """Returns the data set spec to score on, the options to open it with, and its runs.

    A ``training.fit`` run folder among ``model_specs`` records its data set in its
    ``config.yaml``. Scored on that same spec, the run's data set is opened as the
    run opened it: a generated set with the run's ``recipes.GENERATED_DATA_OPTIONS``
    (``popout``: 2000 arrays at 128 px), not with the reader's defaults.

    Args:
        data: the ``--data`` value, or ``None`` for the run folders' data set.
        model_specs: the ``--model`` values.

    Returns:
        ``(spec, options, runs)``: ``runs`` maps each run folder trained on the data
        set scored to its recorded configuration.

    Raises:
        ValueError: without ``--data`` when no run folder is given, or when the
            run folders were trained on different data sets.
    """
    run_configs = {
        spec: configs.read_run_config(spec)
        for spec in model_specs
        if (Path(spec) / configs.CONFIG_FILE).is_file()
    }
    run_data = {spec: config.data for spec, config in run_configs.items()}
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
    runs = {spec: config for spec, config in run_configs.items() if same_data(config.data, data)}
    if runs:
        return data, dict(recipes.GENERATED_DATA_OPTIONS.get(data, {})), runs
    return data, {}, {}


def same_data(first: str, second: str) -> bool:
    """Whether two data set specs name one data set (``nus:../x`` and ``nus:/abs/x``).

    Paths are compared resolved from the working directory, so a run recorded with a
    relative path still has its training images recognised under an absolute one.
    """
    if first == second:
        return True
    first_format, _, first_path = first.partition(":")
    second_format, _, second_path = second.partition(":")
    if first_format != second_format or not first_path or not second_path:
        return False
    return Path(first_path).expanduser().resolve() == Path(second_path).expanduser().resolve()


def images_to_score(
    all_ids: Sequence[str], runs: Mapping[str, configs.FitConfig], all_images: bool = False
) -> tuple[list[str], str]:
    """The images to score and a sentence saying which they are.

    Args:
        all_ids: every image of the data set, in its order.
        runs: the run folders trained on this data set (``data_to_score``).
        all_images: score every image even when runs trained on some of them.

    Returns:
        The image ids (a run's validation split in the order the job scores it) and
        their description, e.g. ``"the validation split of runs/a (80 of 400 images)"``.

    Raises:
        ValueError: if the runs held out no image in common.
    """
    all_ids = list(all_ids)
    if all_images or not runs:
        return all_ids, f"every image ({len(all_ids)})"
    held_out = {spec: job.split_images(config, all_ids)[1] for spec, config in runs.items()}
    first, *others = held_out.values()
    others = [set(ids) for ids in others]
    image_ids = [image_id for image_id in first if all(image_id in ids for ids in others)]
    if not image_ids:
        raise ValueError(
            f"The runs {', '.join(runs)} hold out no image in common; score them one at a "
            "time, or pass --all-images to score every image (training images included)."
        )
    if len(runs) == 1:
        run = next(iter(runs))
        description = f"the validation split of {run} ({len(image_ids)} of {len(all_ids)} images)"
    else:
        description = (
            f"the {len(image_ids)} of {len(all_ids)} images that every run held out for "
            f"validation ({', '.join(runs)})"
        )
    return image_ids, description


def check_model_names(model_specs: Sequence[str]) -> None:
    """Refuses ``--model`` values that give two models one name, before any is loaded.

    The names are the predictors' (``serving.predictor.model_names``): a SavedModel
    folder's name, or every model a run folder exports. They key the results, so two
    alike would leave one model unscored; loading every model first made this error
    wait about 20 s.

    Raises:
        ValueError: naming the clash and the ``--model`` values behind it.
    """
    owners: dict[str, str] = {}
    for spec in model_specs:
        for name in model_names(spec):
            if owners.get(name) == spec:
                raise ValueError(f"--model {spec} is given twice; pass it once.")
            if name in owners:
                raise ValueError(
                    f"Two models are named {name!r} (--model {owners[name]} and --model "
                    f"{spec}); rename one folder."
                )
            owners[name] = spec


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
    data, options, runs = data_to_score(args.data, args.model)  # reads config.yaml files only
    check_model_names(args.model)
    dataset = open_dataset(data, **options)
    all_ids = list(dataset.ids())
    if not all_ids:
        raise ValueError(f"Data set {data!r} holds no images.")
    chosen, which = images_to_score(all_ids, runs, args.all_images)
    image_ids = chosen[: args.limit] if args.limit else chosen
    if len(image_ids) < len(chosen):
        which += f", the first {len(image_ids)}"
    scored = set(image_ids)
    rest = [image_id for image_id in all_ids if image_id not in scored]

    def training_records():
        if not rest:
            raise ValueError(
                "baseline:fitted-centre-bias is fitted on the images not evaluated; use "
                "--limit N below the data set's size to leave some."
            )
        return [dataset.load(image_id) for image_id in rest]

    models = {}
    for spec in args.model:
        models.update(resolve_model(spec, training_records))
    report = evaluate_models(dataset, image_ids, models, seed=args.seed)
    report["data_options"] = options
    report["images_scored"] = which
    report["image_ids"] = list(image_ids)
    opened_with = f" ({', '.join(f'{k}={v}' for k, v in options.items())})" if options else ""
    print(f"\n{report['dataset']}{opened_with}: {report['n_images']} images scored: {which}\n")
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
