"""Speed of LogGaborBank against phasecongruency.gaborconvolve, and reduced-mode error.

Run: ``python benchmarks/log_gabor_speed.py [--repeats N]``. Prints markdown tables.
Prefix ``TF_NUM_INTRAOP_THREADS=1`` to run TensorFlow's kernels single-threaded
(independent ops still run in parallel); the header says which setting ran.

The peer filters the same three YUV channels, one image at a time, in float64, and
rebuilds its filters on every call (that is how it is used). Our layer runs as a
``tf.function`` on float32 with filters cached per shape, and also compiled with XLA
(``tf.function(jit_compile=True)``, an option for the caller: exported models stay
without it). Two reference points run beside them: the spectrum x filters product
and inverse FFTs of the full-resolution mode alone (TensorFlow's FFT cost, what any
TF implementation pays), and scipy.fft with cached float32 filters on all cores.

Candidates take turns, each running once untimed (to find its data in the caches
again after the others ran) and then twice timed, and speed-ups are the median over
repeats of the peer's time divided by the candidate's in the same turn (paired
ratios), because this machine's speed drifts by up to 2x within minutes. CPU time
(all threads, ``time.process_time``) is reported beside wall time.
"""

import argparse
import datetime
import math
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import phasecongruency  # noqa: E402
import scipy.fft  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfsal import paths  # noqa: E402
from tfsal.layers import LogGaborBank, convert_colour  # noqa: E402
from tfsal.layers.log_gabor_filters import full_resolution_filters  # noqa: E402

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


def measure(candidates: dict, repeats: int, calls: int = 2) -> tuple[dict, dict, dict]:
    """Wall and CPU milliseconds per call of every candidate, run in turn.

    In every repeat each candidate runs once untimed (so that it finds its own data
    in the caches again, as when it runs alone, after the other candidates have run)
    and then ``calls`` times timed. Returns the medians over repeats of the wall and
    CPU time per call and, for every candidate, the median over repeats of the peer's
    wall time divided by the candidate's in the same repeat (when there is a "peer"
    candidate): the two run seconds apart, so this paired ratio follows the machine's
    drifting speed better than a ratio of medians.
    """
    wall = {name: [] for name in candidates}
    cpu = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, run in candidates.items():
            run()
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(calls):
                run()
            wall[name].append((time.perf_counter() - start) / calls)
            cpu[name].append((time.process_time() - start_cpu) / calls)
    median = lambda times: {name: 1e3 * float(np.median(v)) for name, v in times.items()}  # noqa: E731
    ratios = {}
    if "peer" in wall:
        peer_times = np.array(wall["peer"])
        ratios = {name: float(np.median(peer_times / np.array(v))) for name, v in wall.items()}
    return median(wall), median(cpu), ratios


def scipy_reference(images: np.ndarray, filters: list[np.ndarray]) -> list[np.ndarray]:
    """The issue's reference point: scipy.fft, float32, filters cached, all cores."""
    workers = os.cpu_count()
    channels = convert_colour(images / 255.0, "yuv").numpy().transpose(0, 3, 1, 2)
    spectra = scipy.fft.fft2(channels, workers=workers)
    return [
        np.abs(scipy.fft.ifft2(spectrum[channel, None] * gain, workers=workers))
        for spectrum in spectra
        for channel in range(spectra.shape[1])
        for gain in filters
    ]


def speed_row(batch: int, height: int, width: int, repeats: int) -> tuple[str, str]:
    images = tf.constant(load_images(batch, height, width))
    full = LogGaborBank(num_scales=SCALES, num_orientations=ORIENTATIONS)
    reduced = LogGaborBank(num_scales=SCALES, num_orientations=ORIENTATIONS, output_stride=STRIDE)
    full_fn, reduced_fn = tf.function(full), tf.function(reduced)
    full_xla = tf.function(full, jit_compile=True)
    reduced_xla = tf.function(reduced, jit_compile=True)
    # The core of the full-resolution mode alone: spectrum times filters and inverse
    # FFTs, in the layer's chunks. The spectrum is an argument and the filters are
    # variables, so that graph optimisation cannot fold any of it into constants.
    filters = [
        tf.Variable(gain) for gain in full_resolution_filters(height, width, full.spec, False)
    ]
    spectrum = tf.complex(tf.random.normal([batch, 3, height, width]), 0.0)

    @tf.function
    def fft_core(spectrum):
        return [
            tf.signal.ifft2d(image[channel, None] * gain)
            for image in tf.unstack(spectrum)
            for channel in range(3)
            for gain in filters
        ]

    numpy_filters = [np.real(gain.numpy()) for gain in filters]
    ms, cpu, ratio = measure(
        {
            "peer": lambda: peer(images.numpy()),
            "full": lambda: full_fn(images).numpy(),
            "full_xla": lambda: full_xla(images).numpy(),
            "reduced": lambda: reduced_fn(images).numpy(),
            "reduced_xla": lambda: reduced_xla(images).numpy(),
            "fft": lambda: [x.numpy() for x in fft_core(spectrum)],
            "scipy": lambda: scipy_reference(images.numpy(), numpy_filters),
        },
        repeats,
    )
    full_gflop = bank_flops(full, batch, height, width) / 1e9
    reduced_gflop = bank_flops(reduced, batch, height, width) / 1e9
    wall_row = (
        f"| {batch} | {height}×{width} | {ms['peer']:.0f} | {ms['full']:.0f} | "
        f"{ratio['full']:.1f}× | {ms['full_xla']:.0f} | {ratio['full_xla']:.1f}× | "
        f"{ms['fft']:.0f} | {ratio['fft']:.1f}× | {ms['scipy']:.0f} | {ratio['scipy']:.1f}× | "
        f"{full_gflop:.2f} | {full_gflop / ms['full'] * 1e3:.1f} | {ms['reduced']:.1f} | "
        f"{ratio['reduced']:.1f}× | {ms['reduced_xla']:.1f} | {ratio['reduced_xla']:.1f}× | "
        f"{reduced_gflop:.3f} | {reduced_gflop / ms['reduced'] * 1e3:.1f} |"
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
        "| speed-up | spectrum × filters + inverse FFTs alone (ms) | speed-up "
        "| scipy.fft, cached filters (ms) | speed-up | full GFLOP | full GFLOP/s "
        "| 1/8 mode (ms) | speed-up | 1/8 mode, XLA (ms) | speed-up | 1/8 GFLOP | 1/8 GFLOP/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
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
        "| crop samples per output cell | batch 1 (ms) | speed-up | batch 1 (CPU ms) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    thresholds = (0.05, 0.1, 0.2, 0.3)
    errors, candidates = {}, {"peer": lambda: peer(one.numpy())}
    for threshold in thresholds:
        bank = LogGaborBank(output_stride=STRIDE, passband_threshold=threshold)
        reduced = bank(images).numpy()
        difference = (reduced - expected).reshape(-1, expected.shape[-1])
        per_channel = np.linalg.norm(difference, axis=0) / np.linalg.norm(
            expected.reshape(-1, expected.shape[-1]), axis=0
        )
        samples = len(bank.colour_channels) * sum(
            crop.multipliers[0] * crop.multipliers[1] for crop in bank._cache.crops
        )
        errors[threshold] = (
            f"{np.linalg.norm(difference) / np.linalg.norm(expected):.4f} | "
            f"{per_channel.max():.4f} | {np.corrcoef(reduced.ravel(), expected.ravel())[0, 1]:.5f} "
            f"| {reduced.mean() / expected.mean():.4f} | {samples}"
        )
        run = tf.function(bank)
        candidates[threshold] = lambda run=run: run(one).numpy()
    ms, cpu, ratio = measure(candidates, repeats)
    for threshold in thresholds:
        default = LogGaborBank(output_stride=STRIDE).passband_threshold
        name = f"{threshold} (default)" if threshold == default else f"{threshold}"
        rows.append(
            f"| {name} | {errors[threshold]} | {ms[threshold]:.1f} | {ratio[threshold]:.1f}× "
            f"| {cpu[threshold]:.1f} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, "
        f"TF {tf.__version__}, TF_NUM_INTRAOP_THREADS="
        f"{os.environ.get('TF_NUM_INTRAOP_THREADS', 'unset')}, load average {os.getloadavg()}\n"
    )
    wall, cpu = speed_tables(args.repeats)
    print("\nWall time (medians):\n\n" + "\n".join(wall) + "\n")
    print("CPU time, all threads (medians):\n\n" + "\n".join(cpu) + "\n")
    print("Reduced mode (stride 8) against full resolution + 8×8 area pooling, 8 images:\n")
    print("\n".join(error_table(args.repeats)))
    print(f"\nload average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
