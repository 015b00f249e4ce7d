r"""(Re-)derive the explainable model of a finished ``training.fit`` run, without retraining.

    python -m training.derive runs/unisal-nus
    python -m training.derive runs/unisal-nus --readout decoder
    python -m training.derive runs/cmrnet --taps stage3 stage4 --set derive.fine_tune_epochs=2

The run's best checkpoint is loaded into its model; the derivation streams the
run's training and validation split (the same seeded split as training), then
``<RUN_DIR>/derivation.json`` (fidelity), ``<RUN_DIR>/metrics.json`` (the deep model,
the explainable model and the baselines on the validation images), the normal
equations of the reconstructions (``derivation-statistics.npz``, which the report
refits from), a new version under ``<RUN_DIR>/export/<model>_explainable/``, and the
rebuilt page ``<RUN_DIR>/report/`` (``--no-report``: the old page is marked out of
date instead) are written.
"""

import argparse
import dataclasses
import html
import sys
import time
from pathlib import Path

import yaml

from training import configs
from training.command import run_command


def build_parser() -> argparse.ArgumentParser:
    """Returns the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m training.derive",
        description="Derive the explainable model of a finished training.fit run (no "
        "retraining): fidelity to derivation.json, scores to metrics.json, a SavedModel "
        "to export/<model>_explainable/<version>/, and the page report/ rebuilt.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", metavar="RUN_DIR", help="the --out folder of a training.fit run.")
    parser.add_argument(
        "--taps", nargs="+", help="taps or layer names to rebuild (default: the model's own)."
    )
    parser.add_argument(
        "--readout", choices=("linear", "decoder"), help="readout (default: linear)."
    )
    parser.add_argument("--readout-epochs", type=int, help="epochs of readout fitting.")
    parser.add_argument("--fine-tune-epochs", type=int, help="epochs of joint fine-tuning.")
    parser.add_argument(
        "--no-report",
        dest="report",
        action="store_false",
        help="do not rebuild <RUN_DIR>/report/ (faster; the old page is marked out of date).",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a derive setting, e.g. --set derive.blur_sigma=6 (repeatable).",
    )
    return parser


def load_run_config(run: Path, args: argparse.Namespace) -> configs.FitConfig:
    """The run's saved configuration with the derive flags applied.

    Raises:
        ValueError: if ``run`` is not a training.fit run folder, or for bad settings.
    """
    recorded = configs.read_run_config(run)
    overrides = {"out": str(run)}
    for flag in ("taps", "readout", "readout_epochs", "fine_tune_epochs"):
        if getattr(args, flag) is not None:
            overrides[f"derive.{flag}"] = getattr(args, flag)
    for assignment in args.set:
        key, separator, value = assignment.partition("=")
        if not separator:
            raise ValueError(f"--set needs KEY=VALUE. Received: --set {assignment}")
        overrides[key.strip()] = yaml.safe_load(value)
    config = configs.apply_overrides(recorded, overrides)
    config = dataclasses.replace(config, derive=dataclasses.replace(config.derive, enabled=True))
    configs.validate(config, resolved=True)
    # A run saved before a derive setting existed leaves it unset: take the recipe's
    # (after the check, so that a null val_fraction is refused, not re-resolved).
    return configs.resolve_model_defaults(config)


def best_checkpoint(run: Path) -> Path:
    """The run's best checkpoint, else its last one.

    Raises:
        ValueError: if the run has no checkpoint.
    """
    from training import callbacks, job

    folder = run / job.CHECKPOINTS
    best = folder / callbacks.BEST_WEIGHTS
    if best.is_file():
        return best
    existing = callbacks.list_checkpoints(folder)
    if not existing:
        raise ValueError(
            f"{folder} holds no checkpoint, so there is no trained model to derive from. "
            f"Train it first (python -m training.fit --out {run}), or finish an interrupted "
            "run with --resume."
        )
    return existing[-1]


def derive_run(run: Path, config: configs.FitConfig, report: bool = True):
    """Derives, scores and exports the explainable model of a run; returns its outputs.

    The run's page describes its explainable model, so it is marked out of date before
    anything of the old model is replaced, then rebuilt (``report``): a reader sees
    the old page marked, or the new one, never an old model shown as the run's. If
    the rebuild fails, the mark stays and the error is raised.
    """
    from training import callbacks, distributed, explainable_stage, job, report_page, trainer

    checkpoint = best_checkpoint(run)
    explainable_stage.check_derivation(
        config
    )  # bad taps or readouts fail before the page is marked
    strategy = distributed.choose_strategy(config.strategy)
    dataset, train_ids, val_ids = job.load_split(config)
    model = trainer.build_model(dataclasses.replace(config, weights=None, encoder_weights=None))
    callbacks.restore_state(checkpoint, model, with_optimizer=False)
    print(f"derive: {config.model} from {checkpoint}")
    outputs = job.RunOutputs(run, run / configs.CONFIG_FILE, run / job.CHECKPOINTS, run / job.LOGS)
    chief = distributed.is_chief(strategy)
    if chief:
        report_page.mark_stale(run / job.REPORT, _stale_reason(run))
    derivation = explainable_stage.derive_explainable(
        config, model, dataset, train_ids, val_ids, outputs, strategy
    )
    if not chief:
        return outputs
    metrics = job.evaluate(config, dataset, val_ids, model, derivation.model)
    job.write_metrics(outputs, metrics, len(val_ids))
    outputs.explainable_export = job.export(
        config, derivation.model, outputs, name=explainable_stage.explainable_name(config)
    )
    print(f"export: explainable SavedModel -> {outputs.explainable_export}")
    if not report:
        print(f"report: not rebuilt (--no-report); rebuild with python -m training.report {run}")
        return outputs
    try:
        job.write_report(
            config,
            outputs,
            dataset,
            val_ids,
            model,
            metrics,
            {
                "output folder": run,
                "checkpoint": checkpoint,
                "explainable model": outputs.explainable_export,
            },
            explainable=derivation.model,
            fidelity=derivation.fidelity,
            statistics=derivation.statistics,
        )
    except Exception:
        print(
            f"report: rebuilding {run / job.REPORT} failed; the old page stays, marked out of "
            f"date. Rebuild it with python -m training.report {run}",
            file=sys.stderr,
        )
        raise
    print(f"report: {outputs.report}")
    return outputs


def _stale_reason(run: Path) -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return (
        f"Out of date: the explainable model of this run was derived again ({when}, "
        "<code>python -m training.derive</code>) and this page was not rebuilt, so it may "
        "describe the model before. Rebuild it with <code>python -m training.report "
        f"{html.escape(str(run))}</code>."
    )


def main(argv: list[str] | None = None) -> int:
    """Runs the command; returns the process exit code (2 for bad input)."""
    args = build_parser().parse_args(argv)
    run = Path(args.run)
    return run_command(lambda: derive_run(run, load_run_config(run, args), args.report))


if __name__ == "__main__":
    sys.exit(main())
