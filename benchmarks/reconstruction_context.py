r"""Reconstruction R² per tap, with and without linear spatial context.

The explainable model reconstructs every tap from the log-Gabor features at the
tap's own position (1×1). This benchmark measures what a k×k neighbourhood of the
same features would add, with the library's own pieces (the bank of the
explainable model, ``LinearReconstruction``'s feature scaling set from the first
training batch as ``tfsal.explain.derive`` does, ``RidgeAccumulator`` with the
ridge penalty chosen on the validation images from ``derive.L2_GRID``)::

    python benchmarks/reconstruction_context.py --parent /work/runs/nus-unisal \\
        --out /work/runs/nus-reconstruction-context --context 3

``--parent`` is a finished ``training.fit`` run (read only; its seeded split, its
best checkpoint, its taps). The k×k features are the k² shifted copies of the
scaled features (edges repeated), so a 72-feature bank gives 72·k² features.
Prints a markdown table and writes ``<out>/reconstruction_context.json``.
"""

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfsal import explain, models  # noqa: E402
from tfsal.data.pipeline import make_pipeline  # noqa: E402
from tfsal.explain.batches import with_progress  # noqa: E402
from tfsal.explain.derive import L2_GRID  # noqa: E402
from tfsal.explain.explainable_model import bank_name  # noqa: E402
from tfsal.explain.ridge import RidgeAccumulator  # noqa: E402
from tfsal.io_utils import atomic_write_text  # noqa: E402
from tfsal.layers.reconstruction import LinearReconstruction  # noqa: E402
from training import derive as derive_command  # noqa: E402


def with_context(features: np.ndarray, size: int) -> np.ndarray:
    """(B, h, w, K) -> (B, h, w, K·size²): every feature at each of the size×size offsets."""
    if size == 1:
        return features
    radius = size // 2
    padded = np.pad(features, ((0, 0), (radius, radius), (radius, radius), (0, 0)), mode="edge")
    height, width = features.shape[1:3]
    shifted = [
        padded[:, dy : dy + height, dx : dx + width] for dy in range(size) for dx in range(size)
    ]
    return np.concatenate(shifted, axis=-1)


def load_parent(run: Path):
    """The run's config, data split, tapped parent (best checkpoint) and its taps."""
    from training import callbacks, job, trainer

    args = argparse.Namespace(
        taps=None, readout=None, readout_epochs=None, fine_tune_epochs=None, set=[]
    )
    config = derive_command.load_run_config(run, args)
    dataset, train_ids, val_ids = job.load_split(config)
    model = trainer.build_model(dataclasses.replace(config, weights=None, encoder_weights=None))
    callbacks.restore_state(derive_command.best_checkpoint(run), model, with_optimizer=False)
    parent, tap_names = job.tapped_parent(config, model)
    return config, dataset, train_ids, val_ids, parent, tap_names


def accumulate(batches, run_parent, banks, scalers, taps, sizes, label):
    """Per tap and context size, the normal equations of one pass over ``batches``."""
    accumulators = {}
    for images, _ in with_progress(batches, label, True):
        activations = run_parent(images)
        features = {stride: bank(images).numpy() for stride, bank in banks.items()}
        for tap in taps:
            scaled = scalers[tap.name].scale_features(features[tap.stride]).numpy()
            target = activations[tap.name].numpy()
            for size in sizes:
                x = with_context(scaled, size)
                key = (tap.name, size)
                if key not in accumulators:
                    accumulators[key] = RidgeAccumulator(x.shape[-1], tap.channels)
                accumulators[key].update(x, target)
    return accumulators


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parent", default="/work/runs/nus-unisal", help="training.fit run")
    parser.add_argument("--out", required=True, help="folder for reconstruction_context.json")
    parser.add_argument("--context", type=int, default=3, help="odd k of the k×k context")
    args = parser.parse_args()
    if args.context < 3 or args.context % 2 == 0:
        raise SystemExit(f"error: --context must be odd and >= 3. Received: {args.context}")
    started, cpu = time.monotonic(), time.process_time()
    config, dataset, train_ids, val_ids, parent, tap_names = load_parent(Path(args.parent))
    kind = models.model_info(config.model).output
    image_size = tuple(config.image_size)
    taps = explain.check_parent(parent, image_size, taps=tap_names, output_kind=kind)
    model = explain.build_explainable_model(taps, output_kind=kind, input_shape=(*image_size, 3))
    banks = {tap.stride: model.get_layer(bank_name(tap.stride)) for tap in taps}
    run_parent = tf.function(lambda images: parent(images, training=False))

    def batches(ids):
        return make_pipeline(dataset, ids, image_size=image_size, resize=config.resize)

    first = next(iter(batches(train_ids)))[0]
    scalers = {}
    for tap in taps:  # as derive: the scaling comes from the first training batch
        scalers[tap.name] = LinearReconstruction(tap.channels)
        scalers[tap.name].adapt(banks[tap.stride](first))
    sizes = (1, args.context)
    train = accumulate(batches(train_ids), run_parent, banks, scalers, taps, sizes, "training")
    val = accumulate(batches(val_ids), run_parent, banks, scalers, taps, sizes, "validation")

    results = {}
    lines = [
        f"| tap | stride | channels | R² 1×1 | R² {args.context}×{args.context} "
        f"| mean channel CC 1×1 | mean channel CC {args.context}×{args.context} |",
        "| --- " * 7 + "|",
    ]
    for tap in taps:
        results[tap.name] = {"stride": tap.stride, "channels": tap.channels}
        for size in sizes:
            fitted = train[tap.name, size]
            scores = {
                l2: val[tap.name, size].score(*fitted.solve(l2 * fitted.count)) for l2 in L2_GRID
            }
            best = max(scores, key=lambda l2: np.nan_to_num(scores[l2].r2, nan=-np.inf))
            results[tap.name][f"{size}x{size}"] = {
                "features": fitted.num_features,
                "l2": best,
                "r2": scores[best].r2,
                "mean_cc": scores[best].mean_cc,
            }
        one, wide = results[tap.name]["1x1"], results[tap.name][f"{args.context}x{args.context}"]
        lines.append(
            f"| {tap.name} | 1/{tap.stride} | {tap.channels} | {one['r2']:.3f} | "
            f"{wide['r2']:.3f} | {one['mean_cc']:.3f} | {wide['mean_cc']:.3f} |"
        )
    report = {
        "parent": args.parent,
        "train_images": len(train_ids),
        "val_images": len(val_ids),
        "taps": results,
        "wall_seconds": time.monotonic() - started,
        "cpu_seconds": time.process_time() - cpu,
        "load_average": os.getloadavg(),
    }
    lines.append(
        f"\n{len(train_ids)} training / {len(val_ids)} validation images; "
        f"{report['wall_seconds']:.0f} s wall, {report['cpu_seconds']:.0f} s CPU."
    )
    print("\n".join(lines))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "reconstruction_context.json", json.dumps(results | report, indent=2))


if __name__ == "__main__":
    main()
