"""Speed of LogGaborBank against phasecongruency.gaborconvolve, and reduced-mode error.

Run: ``python benchmarks/log_gabor_speed.py [--repeats N]``. Prints markdown tables.

The peer filters the same three YUV channels, one image at a time, in float64, and
rebuilds its filters on every call (that is how it is used). Our layer runs as a
``tf.function`` on float32 with filters cached per shape. Times are medians over
interleaved repeats, so load from other processes affects both sides alike.
"""

import argparse
import datetime
import math
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import phasecongruency  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfsal import paths  # noqa: E402
from tfsal.layers import LogGaborBank, convert_colour  # noqa: E402

SCALES, ORIENTATIONS, STRIDE = 4, 6, 8


def load_images(batch: int, height: int, width: int) -> np.ndarray:
    """Natural images (NUS scene stimuli when present, else scikit-image's), RGB 0..255."""
    stimuli = sorted((paths.nus_scene_dir() / "stimuli").glob("*.jpg"))
    if stimuli:
        from PIL import Image

        pictures = [Image.open(path).convert("RGB") for path in stimuli[:batch]]
    else:
        import skimage.data
        from PIL import Image

        pictures = [Image.fromarray(skimage.data.astronaut())] * batch
    resized = [np.asarray(p.resize((width, height), Image.BILINEAR)) for p in pictures]
    return np.stack([resized[i % len(resized)] for i in range(batch)]).astype("float32")


def fft_flops(shape: tuple[int, int]) -> float:
    """Conventional 5 N log2 N flop count of one complex 2-D FFT."""
    n = shape[0] * shape[1]
    return 5.0 * n * math.log2(n)


def bank_flops(bank: LogGaborBank, batch: int, height: int, width: int) -> float:
    colours = len(bank.colour_channels)
    total = colours * fft_flops((height, width))
    if bank.output_stride == 1:
        return batch * (total + bank.num_features * fft_flops((height, width)))
    for crop in bank._cache.crops:
        m_y, m_x = crop.multipliers
        total += colours * fft_flops((m_y * height // STRIDE, m_x * width // STRIDE))
    return batch * total


def peer(images: np.ndarray) -> None:
    for image in convert_colour(images / 255.0, "yuv").numpy().astype(np.float64):
        for channel in range(image.shape[-1]):
            phasecongruency.gaborconvolve(
                image[..., channel], SCALES, ORIENTATIONS, 3, 2.1, 0.55, 1.3
            )


def measure(candidates: dict, repeats: int) -> dict:
    for run in candidates.values():
        run()
    times = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, run in candidates.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: 1e3 * float(np.median(values)) for name, values in times.items()}


def speed_row(batch: int, height: int, width: int, repeats: int) -> str:
    images = tf.constant(load_images(batch, height, width))
    full = LogGaborBank(num_scales=SCALES, num_orientations=ORIENTATIONS)
    reduced = LogGaborBank(num_scales=SCALES, num_orientations=ORIENTATIONS, output_stride=STRIDE)
    full_fn, reduced_fn = tf.function(full), tf.function(reduced)
    # The core of the full-resolution mode alone: spectrum times filters and inverse
    # FFTs, in the layer's chunks (distinct filters, so no chunk is deduplicated).
    spectrum = tf.complex(tf.random.normal([batch, 1, height, width]), 0.0)
    filters = tf.complex(tf.random.uniform([3 * SCALES, ORIENTATIONS, height, width]), 0.0)
    fft_only = tf.function(
        lambda: [tf.signal.ifft2d(spectrum * filters[i]) for i in range(3 * SCALES)]
    )
    ms = measure(
        {
            "peer": lambda: peer(images.numpy()),
            "full": lambda: full_fn(images).numpy(),
            "reduced": lambda: reduced_fn(images).numpy(),
            "fft": lambda: [x.numpy() for x in fft_only()],
        },
        repeats,
    )
    full_gflop = bank_flops(full, batch, height, width) / 1e9
    reduced_gflop = bank_flops(reduced, batch, height, width) / 1e9
    return (
        f"| {batch} | {height}×{width} | {ms['peer']:.0f} | {ms['full']:.0f} | "
        f"{ms['peer'] / ms['full']:.1f}× | {ms['fft']:.0f} | {full_gflop:.2f} | "
        f"{full_gflop / ms['full'] * 1e3:.1f} | {ms['reduced']:.1f} | "
        f"{ms['peer'] / ms['reduced']:.1f}× | {reduced_gflop:.3f} |"
    )


def speed_table(repeats: int) -> list[str]:
    rows = [
        "| batch | H×W | peer gaborconvolve (ms) | full res (ms) | speed-up "
        "| filter × spectrum + inverse FFTs alone (ms) | full GFLOP | full GFLOP/s "
        "| 1/8 mode (ms) | speed-up | 1/8 GFLOP |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for batch, height, width in [(1, 288, 384), (8, 288, 384), (1, 480, 640)]:
        rows.append(speed_row(batch, height, width, repeats))
        print(rows[-1], flush=True)
    return rows


def error_table() -> list[str]:
    images = tf.constant(load_images(8, 288, 384))
    expected = tf.nn.avg_pool2d(LogGaborBank()(images), STRIDE, STRIDE, "VALID").numpy()
    rows = [
        "| passband_threshold | relative L2 error | worst channel | correlation | mean ratio |",
        "|---|---|---|---|---|",
    ]
    for threshold in (0.05, 0.1, 0.2):
        reduced = LogGaborBank(output_stride=STRIDE, passband_threshold=threshold)(images).numpy()
        difference = (reduced - expected).reshape(-1, expected.shape[-1])
        per_channel = np.linalg.norm(difference, axis=0) / np.linalg.norm(
            expected.reshape(-1, expected.shape[-1]), axis=0
        )
        rows.append(
            f"| {threshold} | {np.linalg.norm(difference) / np.linalg.norm(expected):.4f} | "
            f"{per_channel.max():.4f} | {np.corrcoef(reduced.ravel(), expected.ravel())[0, 1]:.5f} "
            f"| {reduced.mean() / expected.mean():.4f} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
        f"TF {tf.__version__}\n"
    )
    table = speed_table(args.repeats)
    print("\n" + "\n".join(table) + "\n")
    print("Reduced mode (stride 8) against full resolution + 8×8 area pooling, 8 images:\n")
    print("\n".join(error_table()))


if __name__ == "__main__":
    main()
