"""Speed of LogGaborBank against phasecongruency.gaborconvolve, and reduced-mode error.

Run: ``python benchmarks/log_gabor_speed.py [--repeats N]``. Prints markdown tables.

The peer filters the same three YUV channels, one image at a time, in float64, and
rebuilds its filters on every call (that is how it is used). Our layer runs as a
``tf.function`` on float32 with filters cached per shape, and also compiled with XLA
(``tf.function(jit_compile=True)``, an option for the caller: exported models stay
without it). Times are medians over interleaved repeats, so load from other
processes affects both sides alike; CPU time (all threads, ``time.process_time``) is
reported beside wall time because it is less sensitive to that load.
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


def measure(candidates: dict, repeats: int) -> tuple[dict, dict]:
    """Median wall and CPU milliseconds of every candidate, run interleaved."""
    for run in candidates.values():
        run()
    wall = {name: [] for name in candidates}
    cpu = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, run in candidates.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            run()
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    median = lambda times: {name: 1e3 * float(np.median(v)) for name, v in times.items()}  # noqa: E731
    return median(wall), median(cpu)


def speed_row(batch: int, height: int, width: int, repeats: int) -> tuple[str, str]:
    images = tf.constant(load_images(batch, height, width))
    full = LogGaborBank(num_scales=SCALES, num_orientations=ORIENTATIONS)
    reduced = LogGaborBank(num_scales=SCALES, num_orientations=ORIENTATIONS, output_stride=STRIDE)
    full_fn, reduced_fn = tf.function(full), tf.function(reduced)
    full_xla = tf.function(full, jit_compile=True)
    reduced_xla = tf.function(reduced, jit_compile=True)
    # The core of the full-resolution mode alone: spectrum times filters and inverse
    # FFTs, in the layer's chunks (distinct filters, so no chunk is deduplicated).
    spectrum = tf.complex(tf.random.normal([batch, 1, height, width]), 0.0)
    filters = tf.complex(tf.random.uniform([3 * SCALES, ORIENTATIONS, height, width]), 0.0)
    fft_only = tf.function(
        lambda: [tf.signal.ifft2d(spectrum * filters[i]) for i in range(3 * SCALES)]
    )
    ms, cpu = measure(
        {
            "peer": lambda: peer(images.numpy()),
            "full": lambda: full_fn(images).numpy(),
            "full_xla": lambda: full_xla(images).numpy(),
            "reduced": lambda: reduced_fn(images).numpy(),
            "reduced_xla": lambda: reduced_xla(images).numpy(),
            "fft": lambda: [x.numpy() for x in fft_only()],
        },
        repeats,
    )
    full_gflop = bank_flops(full, batch, height, width) / 1e9
    reduced_gflop = bank_flops(reduced, batch, height, width) / 1e9
    wall_row = (
        f"| {batch} | {height}×{width} | {ms['peer']:.0f} | {ms['full']:.0f} | "
        f"{ms['peer'] / ms['full']:.1f}× | {ms['full_xla']:.0f} | {ms['fft']:.0f} | "
        f"{full_gflop:.2f} | {full_gflop / ms['full'] * 1e3:.1f} | {ms['reduced']:.1f} | "
        f"{ms['peer'] / ms['reduced']:.1f}× | {ms['reduced_xla']:.1f} | "
        f"{ms['peer'] / ms['reduced_xla']:.1f}× | {reduced_gflop:.3f} |"
    )
    cpu_row = (
        f"| {batch} | {height}×{width} | {cpu['peer']:.0f} | {cpu['full']:.0f} | "
        f"{cpu['peer'] / cpu['full']:.1f}× | {cpu['full_xla']:.0f} | "
        f"{cpu['peer'] / cpu['full_xla']:.1f}× | {cpu['reduced']:.1f} | "
        f"{cpu['peer'] / cpu['reduced']:.1f}× | {cpu['reduced_xla']:.1f} | "
        f"{cpu['peer'] / cpu['reduced_xla']:.1f}× |"
    )
    return wall_row, cpu_row


def speed_tables(repeats: int) -> tuple[list[str], list[str]]:
    wall = [
        "| batch | H×W | peer gaborconvolve (ms) | full res (ms) | speed-up | full res, XLA (ms) "
        "| filter × spectrum + inverse FFTs alone (ms) | full GFLOP | full GFLOP/s "
        "| 1/8 mode (ms) | speed-up | 1/8 mode, XLA (ms) | speed-up | 1/8 GFLOP |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    cpu = [
        "| batch | H×W | peer (CPU ms) | full res | ratio | full res, XLA | ratio "
        "| 1/8 mode | ratio | 1/8 mode, XLA | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for batch, height, width in [(1, 288, 384), (8, 288, 384), (1, 480, 640)]:
        wall_row, cpu_row = speed_row(batch, height, width, repeats)
        wall.append(wall_row)
        cpu.append(cpu_row)
        print(wall_row, cpu_row, sep="\n", flush=True)
    return wall, cpu


def error_table(repeats: int) -> list[str]:
    images = tf.constant(load_images(8, 288, 384))
    expected = tf.nn.avg_pool2d(LogGaborBank()(images), STRIDE, STRIDE, "VALID").numpy()
    one = images[:1]
    rows = [
        "| passband_threshold | relative L2 error | worst channel | correlation | mean ratio "
        "| crop samples per output cell | batch 1 (ms) | batch 1 (CPU ms) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for threshold in (0.05, 0.1, 0.2, 0.3):
        bank = LogGaborBank(output_stride=STRIDE, passband_threshold=threshold)
        reduced = bank(images).numpy()
        difference = (reduced - expected).reshape(-1, expected.shape[-1])
        per_channel = np.linalg.norm(difference, axis=0) / np.linalg.norm(
            expected.reshape(-1, expected.shape[-1]), axis=0
        )
        samples = len(bank.colour_channels) * sum(
            crop.multipliers[0] * crop.multipliers[1] for crop in bank._cache.crops
        )
        run = tf.function(bank)
        ms, cpu = measure({"bank": lambda run=run: run(one).numpy()}, repeats)
        name = f"{threshold} (default)" if threshold == 0.1 else f"{threshold}"
        rows.append(
            f"| {name} | {np.linalg.norm(difference) / np.linalg.norm(expected):.4f} | "
            f"{per_channel.max():.4f} | {np.corrcoef(reduced.ravel(), expected.ravel())[0, 1]:.5f} "
            f"| {reduced.mean() / expected.mean():.4f} | {samples} | {ms['bank']:.1f} "
            f"| {cpu['bank']:.1f} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
        f"TF {tf.__version__}, load average {os.getloadavg()}\n"
    )
    wall, cpu = speed_tables(args.repeats)
    print("\nWall time (medians):\n\n" + "\n".join(wall) + "\n")
    print("CPU time, all threads (medians):\n\n" + "\n".join(cpu) + "\n")
    print("Reduced mode (stride 8) against full resolution + 8×8 area pooling, 8 images:\n")
    print("\n".join(error_table(args.repeats)))
    print(f"\nload average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
