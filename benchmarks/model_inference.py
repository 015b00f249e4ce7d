"""Inference speed and size of the deep saliency models on this machine's CPU.

Run ``python benchmarks/model_inference.py [--repeats N] [--models NAME ...]``; it
prints a markdown table with, for UNISAL (288x384), MSI-Net (240x320) and CMRNet
(its default size): trainable parameters, all weights (with batch-norm statistics),
their float32 size, and the median wall time per image of a compiled forward pass
(``tf.function``, inference mode, no taps) at batch 1 and batch 8. Models that are
not registered are listed as missing.
"""

import argparse
import logging
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfsal.models  # noqa: E402

# (registry name, input size used by the benchmark): the sizes each model was
# published at (UNISAL on SALICON, MSI-Net on SALICON), CMRNet at its default.
BENCHMARK_SIZES = {
    "unisal": (288, 384),
    "msinet": (240, 320),
    "cmrnet": None,
}
BATCH_SIZES = (1, 8)


def _median_seconds(forward, images, repeats: int) -> float:
    forward(images)  # trace and warm up
    forward(images)
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        forward(images).numpy()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def benchmark_model(name: str, repeats: int) -> dict:
    """Measures one registered model; returns a row of the table."""
    size = BENCHMARK_SIZES.get(name) or tfsal.models.model_info(name).default_input_size
    model = tfsal.models.get(name, taps=())
    parameters = model.count_params()
    trainable = sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)
    forward = tf.function(lambda x: model(x, training=False)["saliency"], reduce_retracing=True)
    rng = np.random.default_rng(0)
    row = {"name": name, "size": size, "parameters": parameters, "trainable": trainable}
    for batch in BATCH_SIZES:
        images = tf.constant(rng.uniform(0, 255, (batch, *size, 3)).astype("float32"))
        seconds = _median_seconds(forward, images, repeats)
        row[batch] = 1000.0 * seconds / batch
        print(f"  {name} batch {batch}: {1000.0 * seconds:.1f} ms per batch", file=sys.stderr)
    return row


def format_table(rows: list[dict]) -> str:
    """Formats the measured rows as a markdown table."""
    lines = [
        "| model | input (H×W) | trainable parameters | all weights | weights (float32) "
        "| ms/image, batch 1 | ms/image, batch 8 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        height, width = row["size"]
        lines.append(
            f"| {row['name']} | {height}×{width} | {row['trainable']:,} | {row['parameters']:,} "
            f"| {row['parameters'] * 4 / 2**20:.1f} MiB | {row[1]:.1f} | {row[8]:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per batch size")
    parser.add_argument(
        "--models", nargs="+", default=list(BENCHMARK_SIZES), help="registry names to measure"
    )
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1. Received: {args.repeats}")
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    registered = set(tfsal.models.list_models())
    rows, missing = [], []
    for name in args.models:
        if name not in registered:
            missing.append(name)
            continue
        print(f"measuring {name} ...", file=sys.stderr)
        rows.append(benchmark_model(name, args.repeats))
    print(format_table(rows))
    print(
        f"\nCPU threads: {os.cpu_count()}; median of {args.repeats} calls after two "
        "warm-up calls; TensorFlow " + tf.__version__ + "."
    )
    if missing:
        print(f"Not registered, not measured: {', '.join(missing)}.")


if __name__ == "__main__":
    main()
