r"""Per-tap reconstruction R² of a trained parent, with and without spatial context.

The explainable model rebuilds every tap from the log-Gabor magnitudes of its own
cell (a 1×1 map of the K bank features). This script measures how much a k×k
neighbourhood of those features would add: the K·k² features of the cells around
each tap pixel, stacked, reconstruct the tap by the same streamed ridge regression::

    python benchmarks/tap_r2.py --run /work/runs/nus-unisal --out unisal.json --png unisal.png

1. rebuilds the run's model from its best checkpoint with the derive taps exposed
   (``derive.taps`` of its config, else the model's registered default taps) and
   reads the run's own seeded train/validation split;
2. streams the training and the validation images once through the parent and one
   ``LogGaborBank`` per tap stride, scales the features as the derivation does (a
   ``LinearReconstruction``'s median / log1p / standardisation, adapted on the first
   training batch) and accumulates, per tap, the normal equations
   (``RidgeAccumulator``) of the 1×1 features and of the k×k context features on the
   same rows;
3. solves both for each penalty of the derivation's ``L2_GRID`` (per accumulated
   row), keeps the one with the best validation R², prints a markdown table and
   writes it as JSON (``--out``) and as a bar chart (``--png``).

Taps finer than ``--max-rows-per-image`` cells are sampled (seeded, other cells per
image), which keeps the cost of the fine taps of CMRNet (1/2, 1/4) bounded; the
pooled R² of a random sample estimates the R² of all cells. Cells outside the map
repeat its edge. ``--max-images`` caps the training images (the validation images
are always all of the split).
"""

import argparse
import dataclasses
import datetime
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.charts import paired_bar_chart  # noqa: E402
from tfsal.data.pipeline import make_pipeline  # noqa: E402
from tfsal.explain import taps as taps_lib  # noqa: E402
from tfsal.explain.batches import batch_images, first_images, with_progress  # noqa: E402
from tfsal.explain.derive import L2_GRID  # noqa: E402
from tfsal.explain.ridge import RidgeAccumulator  # noqa: E402
from tfsal.io_utils import atomic_write_text  # noqa: E402
from tfsal.layers import LinearReconstruction, LogGaborBank  # noqa: E402
from tfsal.visualize import write_png  # noqa: E402

DEFAULT_CONTEXT = 3
DEFAULT_MAX_ROWS_PER_IMAGE = 1024


def context_offsets(size: int) -> list[tuple[int, int]]:
    """The (dy, dx) cell offsets of a ``size``×``size`` neighbourhood, centre first.

    The centre comes first so that the first K columns of ``context_rows`` are the
    1×1 features the explainable model reads.

    Raises:
        ValueError: for a size that is not an odd int >= 1.
    """
    if not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise ValueError(f"size must be an odd int >= 1. Received: size={size!r}")
    radius = size // 2
    around = [
        (dy, dx)
        for dy in range(-radius, radius + 1)
        for dx in range(-radius, radius + 1)
        if (dy, dx) != (0, 0)
    ]
    return [(0, 0), *around]


def sample_positions(height: int, width: int, max_rows: int, rng: np.random.Generator):
    """Cells (y, x) of a height×width map: all of them, or ``max_rows`` drawn without repeats.

    Returns:
        An int array (n, 2), in row-major order.
    """
    if max_rows < 1:
        raise ValueError(f"max_rows must be >= 1. Received: max_rows={max_rows!r}")
    cells = height * width
    chosen = np.arange(cells) if cells <= max_rows else np.sort(rng.choice(cells, max_rows, False))
    return np.stack([chosen // width, chosen % width], axis=1)


def context_rows(features: np.ndarray, size: int, positions: np.ndarray) -> np.ndarray:
    """The features of the ``size``×``size`` cells around each position, stacked.

    Args:
        features: (B, h, w, K) feature maps.
        size: odd neighbourhood size; 1 gives the features of the positions alone.
        positions: (n, 2) int cells (y, x) inside the maps.

    Returns:
        (B, n, K·size²): for every offset of ``context_offsets(size)`` in turn, the K
        features of the cell at that offset (cells outside the map repeat its edge).
    """
    features = np.asarray(features)
    if features.ndim != 4:
        raise ValueError(f"features must be (B, h, w, K). Received: shape {features.shape}")
    height, width = features.shape[1:3]
    ys, xs = positions[:, 0], positions[:, 1]
    blocks = []
    for dy, dx in context_offsets(size):
        rows = np.clip(ys + dy, 0, height - 1)
        cols = np.clip(xs + dx, 0, width - 1)
        blocks.append(features[:, rows, cols, :])
    return np.concatenate(blocks, axis=-1)


def best_ridge(
    train: RidgeAccumulator, val: RidgeAccumulator, l2_grid=L2_GRID
) -> dict[str, float | dict]:
    """Solves ``train`` for every penalty (per row, as the derivation) and scores on ``val``.

    Returns:
        ``{"l2", "r2", "mean_cc", "r2_by_l2"}`` of the penalty with the best
        validation R².
    """
    tried = {}
    for l2 in l2_grid:
        tried[l2] = val.score(*train.solve(l2 * train.count))
    best = max(tried, key=lambda l2: np.nan_to_num(tried[l2].r2, nan=-np.inf))
    return {
        "l2": best,
        "r2": tried[best].r2,
        "mean_cc": tried[best].mean_cc,
        "r2_by_l2": {str(l2): score.r2 for l2, score in tried.items()},
    }


def markdown_table(results: dict, size: int) -> list[str]:
    """One row per tap: stride, channels, rows, and 1×1 and k×k l2 and R²."""
    context = f"{size}×{size}"
    lines = [
        f"| tap | stride | channels | rows per image | l2 (1×1) | R² (1×1) | l2 ({context}) "
        f"| R² ({context}) | gain |",
        "| --- " * 9 + "|",
    ]
    for tap, row in results.items():
        single, wide = row["1x1"], row["context"]
        lines.append(
            f"| {tap} | 1/{row['stride']} | {row['channels']} | {row['rows_per_image']} | "
            f"{single['l2']:g} | {single['r2']:.3f} | {wide['l2']:g} | {wide['r2']:.3f} | "
            f"{wide['r2'] - single['r2']:+.3f} |"
        )
    return lines


def r2_chart(results: dict, size: int, title: str) -> np.ndarray:
    """A bar chart of every tap's validation R², 1×1 next to k×k, as an RGB picture."""
    taps = list(results)
    return paired_bar_chart(
        [f"{tap}\n1/{results[tap]['stride']}" for tap in taps],
        (
            ("1×1 (the model)", [results[tap]["1x1"]["r2"] for tap in taps]),
            (f"{size}×{size}", [results[tap]["context"]["r2"] for tap in taps]),
        ),
        size=(1.6 + 1.3 * len(taps), 3.2),
        value_format="%.3f",
        ylabel="validation R²",
        title=title,
    )


def load_parent(run: Path):
    """The run's config, tapped parent (best checkpoint), tap names and split."""
    from training import callbacks, configs, explainable_stage, job, trainer
    from training import derive as derive_command

    config = configs.read_run_config(run)
    model = trainer.build_model(dataclasses.replace(config, weights=None, encoder_weights=None))
    callbacks.restore_state(derive_command.best_checkpoint(run), model, with_optimizer=False)
    parent, taps = explainable_stage.tapped_parent(config, model)
    dataset, train_ids, val_ids = job.load_split(config)
    return config, parent, taps, dataset, train_ids, val_ids


class TapStreamer:
    """Streams images through parent and banks into per-tap 1×1 and k×k accumulators."""

    def __init__(self, parent, taps, size: int, max_rows_per_image: int, seed: int = 0):
        self.taps = list(taps)
        self.size = size
        self.max_rows = max_rows_per_image
        self.seed = seed
        self.run_parent = tf.function(lambda images: parent(images, training=False))
        self.banks = {}
        self.scalers = {}
        self.strides = {}
        self.channels = {}

    def setup(self, images) -> None:
        """Measures the taps' strides and adapts the feature scaling on a first batch."""
        activations = self.run_parent(images)
        measured = taps_lib.measure_taps(activations, images.shape, self.taps)
        self.channels = {tap.name: tap.channels for tap in measured}
        self.strides = {tap.name: tap.stride for tap in measured}
        for stride in sorted(set(self.strides.values())):
            self.banks[stride] = LogGaborBank(output_stride=stride)
        self.features = tf.function(
            lambda batch: {stride: bank(batch) for stride, bank in self.banks.items()}
        )
        features = self.features(images)
        for tap, stride in self.strides.items():
            scaler = LinearReconstruction(self.channels[tap])
            scaler.adapt(features[stride])
            self.scalers[tap] = scaler

    def accumulate(self, batches, label: str) -> dict[str, dict[str, RidgeAccumulator]]:
        """One pass: per tap, ``{"1x1": ..., "context": ...}`` accumulators on the same rows."""
        rngs = {
            tap: np.random.default_rng([self.seed, index]) for index, tap in enumerate(self.taps)
        }
        accumulators = {}
        for batch in with_progress(batches, label, True):
            images = batch_images(batch)
            activations = self.run_parent(images)
            features = self.features(images)
            for tap in self.taps:
                scaled = self.scalers[tap].scale_features(features[self.strides[tap]]).numpy()
                target = activations[tap].numpy()
                positions = sample_positions(*target.shape[1:3], self.max_rows, rngs[tap])
                x = context_rows(scaled, self.size, positions)
                y = target[:, positions[:, 0], positions[:, 1], :]
                if tap not in accumulators:
                    k = scaled.shape[-1]
                    accumulators[tap] = {
                        "1x1": RidgeAccumulator(k, y.shape[-1]),
                        "context": RidgeAccumulator(x.shape[-1], y.shape[-1]),
                    }
                accumulators[tap]["1x1"].update(x[..., : scaled.shape[-1]], y)
                accumulators[tap]["context"].update(x, y)
        return accumulators


def measure(run: Path, size: int, max_images: int | None, max_rows_per_image: int) -> dict:
    """Streams a run's split once and returns the JSON-ready report of every tap."""
    started, cpu_started = time.monotonic(), time.process_time()
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"tap_r2: {run}, {stamp}, load average {os.getloadavg()}")
    config, parent, taps, dataset, train_ids, val_ids = load_parent(run)
    train_ids = train_ids[:max_images]

    def batches(image_ids):
        return make_pipeline(
            dataset,
            image_ids,
            image_size=tuple(config.image_size),
            resize=config.resize,
            batch_size=config.derive.batch_size or config.batch_size,
        )

    streamer = TapStreamer(parent, taps, size, max_rows_per_image, config.seed)
    streamer.setup(first_images(batches(train_ids), "training images"))
    train = streamer.accumulate(batches(train_ids), f"training images ({len(train_ids)})")
    val = streamer.accumulate(batches(val_ids), f"validation images ({len(val_ids)})")
    results = {}
    for tap in taps:
        results[tap] = {
            "stride": streamer.strides[tap],
            "channels": streamer.channels[tap],
            "rows_per_image": train[tap]["1x1"].count // len(train_ids),
            "features": {
                "1x1": train[tap]["1x1"].num_features,
                "context": train[tap]["context"].num_features,
            },
            "1x1": best_ridge(train[tap]["1x1"], val[tap]["1x1"]),
            "context": best_ridge(train[tap]["context"], val[tap]["context"]),
        }
    return {
        "run": str(run),
        "model": config.model,
        "image_size": list(config.image_size),
        "context": size,
        "train_images": len(train_ids),
        "val_images": len(val_ids),
        "max_rows_per_image": max_rows_per_image,
        "taps": results,
        "wall_seconds": time.monotonic() - started,
        "cpu_seconds": time.process_time() - cpu_started,
        "started": stamp,
        "load_after": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="a finished training.fit run folder")
    source.add_argument("--from-json", help="redraw an earlier --out instead of measuring")
    parser.add_argument("--context", type=int, default=DEFAULT_CONTEXT, help="odd k of k×k")
    parser.add_argument("--max-images", type=int, default=None, help="cap on training images")
    parser.add_argument(
        "--max-rows-per-image",
        type=int,
        default=DEFAULT_MAX_ROWS_PER_IMAGE,
        help="cells sampled per image and tap (all of a smaller map)",
    )
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    parser.add_argument("--png", default=None, help="draw the R² bar chart here")
    args = parser.parse_args()
    try:
        context_offsets(args.context)
        if args.from_json:
            report = json.loads(Path(args.from_json).read_text(encoding="utf-8"))
        else:
            report = measure(Path(args.run), args.context, args.max_images, args.max_rows_per_image)
    except (ValueError, OSError) as error:
        raise SystemExit(f"error: {error}") from None
    height, width = report["image_size"]
    print("\n" + "\n".join(markdown_table(report["taps"], report["context"])))
    print(
        f"\n{report['model']} at {height}×{width}: {report['train_images']} training, "
        f"{report['val_images']} validation images; {report['wall_seconds']:.0f} s wall, "
        f"{report['cpu_seconds']:.0f} CPU-s (started {report['started']})."
    )
    if args.out:
        atomic_write_text(Path(args.out), json.dumps(report, indent=2))
        print(f"tap_r2: results -> {args.out}")
    if args.png:
        title = (
            f"{report['model']} ({Path(report['run']).name}): reconstruction R² on "
            f"{report['val_images']} validation images"
        )
        write_png(args.png, r2_chart(report["taps"], report["context"], title))
        print(f"tap_r2: chart -> {args.png}")


if __name__ == "__main__":
    main()
