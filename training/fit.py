r"""The main job: train a deep saliency model, evaluate it, export it, report.

Run ``python -m training.fit`` with no arguments to train CMRNet on the generated
pop-out data set on a CPU in a few minutes; ``--help`` lists every option::

    python -m training.fit --model unisal --data nus:../shared/datasets/nus-scene \\
        --image-size 224 224 --out runs/unisal-nus
    python -m training.fit --out runs/unisal-nus --resume    # after an interruption

Stages, each printing where its output went:

1. **train** (``training.trainer``): checkpoints in ``<out>/checkpoints``,
   TensorBoard logs in ``<out>/logs``;
2. **derive** the explainable model (``tfsal.explain.derive``, settings
   ``derive.*``): ``<out>/derivation.json`` with its fidelity to the model;
3. **evaluate** the model, its explainable model and the baselines on the validation split:
   ``<out>/metrics.json`` in the schema of ``training.evaluate``;
4. **export** SavedModels for TF Serving: ``<out>/export/<model>/<version>/`` and
   ``<out>/export/<model>_explainable/<version>/``;
5. **report**: ``<out>/report/index.html`` with sample saliency overlays.

The default model is CMRNet: it is the paper's own model, it trains from scratch
(no pretrained encoder to download) and at 1.7 M parameters it is the registered
model that trains in minutes on two CPU cores.
"""

import argparse
import dataclasses
import datetime
import sys
from pathlib import Path

from training import configs
from training.command import run_command

EPILOG = """\
outputs (in --out): config.yaml, checkpoints/ (one per epoch), logs/ (TensorBoard),
derivation.json (explainable model's fidelity), metrics.json (model, explainable model
and baselines on the validation split), export/<model>/<version>/ and
export/<model>_explainable/<version>/ (SavedModels), report/index.html.

examples:
  python -m training.fit                                   # CMRNet on pop-out arrays
  python -m training.fit --model unisal --data nus:../shared/datasets/nus-scene \\
      --image-size 224 224 --set train_size=320 --set val_size=80 --out runs/nus
  python -m training.fit --out runs/nus --resume           # continue after a crash
  TF_CONFIG='{"cluster": {"worker": ["h1:2222", "h2:2222"]}, "task": {"type": "worker",
  "index": 0}}' python -m training.fit ...                 # one per worker
"""


def build_parser() -> argparse.ArgumentParser:
    """Returns the command-line parser (every option overrides ``--config``)."""
    parser = argparse.ArgumentParser(
        prog="python -m training.fit",
        description="Train a deep saliency model, evaluate it on held-out images against "
        "baselines, export it as a SavedModel and write an HTML report.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", help="YAML file of settings (the fields of training/fit_config.py)."
    )
    parser.add_argument(
        "--model", help=f"registered model name (default: {configs.FitConfig.model})."
    )
    parser.add_argument(
        "--data", help="data set: FORMAT:PATH (e.g. nus:../shared/datasets/nus-scene) or popout."
    )
    parser.add_argument("--out", help="output folder (default: runs/<timestamp>).")
    parser.add_argument("--epochs", type=int, help="training epochs (default: per model).")
    parser.add_argument("--batch-size", type=int, help="global batch size (default: per model).")
    parser.add_argument(
        "--image-size",
        type=int,
        nargs=2,
        metavar=("HEIGHT", "WIDTH"),
        help="model input size (default: per model and data set).",
    )
    parser.add_argument(
        "--weights", help="start from these model weights (.weights.h5, or a checkpoint .npz)."
    )
    parser.add_argument(
        "--encoder-weights",
        help="pretrained encoder weights: a path, 'auto' (shared ImageNet weights where the "
        "model has them; the default) or 'none'.",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last complete checkpoint.",
    )
    parser.add_argument("--seed", type=int, help="seed of split, data order and weights.")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any setting, e.g. --set optimizer.learning_rate=0.01 (repeatable).",
    )
    return parser


def _parse_value(text: str):
    import yaml

    return yaml.safe_load(text)


def config_from_args(args: argparse.Namespace) -> configs.FitConfig:
    """Resolves the run configuration: defaults < run folder or YAML < flags.

    With ``--resume``, the configuration saved in ``<out>/config.yaml`` is the base.

    Raises:
        ValueError: for bad settings; FileNotFoundError for a missing file.
    """
    if args.resume and not args.out:
        raise ValueError("--resume needs --out DIR: the folder of the run to continue.")
    if args.config:
        config = configs.load_yaml(args.config)
    elif args.resume and (Path(args.out) / configs.CONFIG_FILE).is_file():
        config = configs.read_run_config(args.out)
    else:
        config = configs.FitConfig()
    overrides = {}
    for flag in ("model", "data", "out", "epochs", "batch_size", "weights", "seed"):
        if getattr(args, flag) is not None:
            overrides[flag] = getattr(args, flag)
    if args.image_size is not None:
        overrides["image_size"] = list(args.image_size)
    if args.encoder_weights is not None:
        overrides["encoder_weights"] = (
            None if args.encoder_weights.lower() == "none" else args.encoder_weights
        )
    for assignment in args.set:
        key, separator, value = assignment.partition("=")
        if not separator:
            raise ValueError(f"--set needs KEY=VALUE. Received: --set {assignment}")
        overrides[key.strip()] = _parse_value(value)
    config = configs.apply_overrides(config, overrides)
    if config.out is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        config = dataclasses.replace(config, out=str(Path("runs") / stamp))
    return config


def main(argv: list[str] | None = None) -> int:
    """Runs the main job; returns the process exit code (2 for bad input)."""
    args = build_parser().parse_args(argv)
    # Imported here so that --help answers without loading TensorFlow.
    from training.job import run

    return run_command(
        lambda: run(config_from_args(args), resume=args.resume),
        interrupted="interrupted; --resume --out RUN_DIR continues from the last checkpoint.",
    )


if __name__ == "__main__":
    sys.exit(main())
