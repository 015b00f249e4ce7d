"""Time of every tfsal metric on one 480x640 map with 100 fixations, on one core.

The peer is pysaliency 0.2.22 on the same inputs (its low-level metric functions and
numba ROC code, warmed up first; imported with the documented shims). Prints a
markdown table of median times.

    python benchmarks/metrics_speed.py [--repeats 30]
"""

import os

# One core: set before numpy loads its BLAS.
for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[variable] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import types  # noqa: E402

import numpy as np  # noqa: E402

from tfsal import metrics  # noqa: E402

SHAPE = (480, 640)
NUM_FIXATIONS = 100


def make_inputs(seed=0):
    rng = np.random.default_rng(seed)
    saliency = rng.gamma(2.0, size=SHAPE)
    flat = rng.choice(saliency.size, NUM_FIXATIONS, replace=False)
    fixations = np.zeros(SHAPE)
    fixations.flat[flat] = 1
    other = np.zeros(SHAPE)
    other.flat[rng.choice(saliency.size, 10 * NUM_FIXATIONS, replace=False)] = 1
    density = rng.gamma(2.0, size=SHAPE)
    baseline = np.ones(SHAPE)
    return saliency, fixations, other, density, baseline


def median_ms(function, repeats):
    """Median CPU time of one call: robust to other processes sharing the cores."""
    function()  # warm-up (numba compilation, caches)
    times = []
    for _ in range(repeats):
        start = time.process_time()
        function()
        times.append(time.process_time() - start)
    return 1000 * statistics.median(times)


def median_wall_ms(function, repeats):
    """Median wall-clock time of one call (inflated when the cores are shared)."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def tfsal_metrics(saliency, fixations, other, density, baseline):
    return {
        "AUC-Judd": lambda: metrics.auc_judd(saliency, fixations),
        "AUC-Borji (MIT, 100 splits)": lambda: metrics.auc_borji(saliency, fixations),
        "AUC-Borji exact (all pixels)": lambda: metrics.auc_borji(saliency, fixations, exact=True),
        "sAUC (MIT, 100 splits)": lambda: metrics.auc_shuffled(saliency, fixations, other),
        "sAUC exact (all other fixations)": lambda: metrics.auc_shuffled(
            saliency, fixations, other, exact=True
        ),
        "NSS": lambda: metrics.nss(saliency, fixations),
        "CC": lambda: metrics.cc(saliency, density),
        "KLD": lambda: metrics.kld(saliency, density),
        "SIM": lambda: metrics.sim(saliency, density),
        "IG": lambda: metrics.information_gain(saliency, fixations, baseline),
    }


def pysaliency_metrics(saliency, fixations, other, density, baseline):
    sys.modules.setdefault("torch", types.ModuleType("torch"))
    if not hasattr(np, "trapz"):
        np.trapz = np.trapezoid
    from pysaliency.metrics import CC, NSS, SIM, MIT_KLDiv
    from pysaliency.roc import general_roc

    ys, xs = np.nonzero(fixations)
    other_ys, other_xs = np.nonzero(other)

    def information_gain():
        # pysaliency's definition for probabilistic models, on the same maps.
        log_density = np.log(saliency / saliency.sum())
        log_baseline = np.log(baseline / baseline.sum())
        return np.mean(log_density[ys, xs] - log_baseline[ys, xs]) / np.log(2)

    return {
        "AUC-Judd": lambda: general_roc(saliency[ys, xs], saliency[fixations == 0], judd=1),
        "AUC-Borji exact (all pixels)": lambda: general_roc(saliency[ys, xs], saliency.ravel()),
        "sAUC exact (all other fixations)": lambda: general_roc(
            saliency[ys, xs], saliency[other_ys, other_xs]
        ),
        "NSS": lambda: NSS(saliency, xs, ys).mean(),
        "CC": lambda: CC(saliency, density),
        "KLD": lambda: MIT_KLDiv(saliency, density),
        "SIM": lambda: SIM(saliency, density),
        "IG": information_gain,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    inputs = make_inputs()
    ours = {name: median_ms(f, args.repeats) for name, f in tfsal_metrics(*inputs).items()}
    try:
        peer = {name: median_ms(f, args.repeats) for name, f in pysaliency_metrics(*inputs).items()}
    except ImportError:
        peer = {}
    emd_ms = median_ms(lambda: metrics.emd(inputs[0], inputs[3]), max(3, args.repeats // 10))

    print(
        f"{SHAPE[0]}x{SHAPE[1]} map, {NUM_FIXATIONS} fixations, 1 thread, median CPU time "
        f"of {args.repeats} runs\n"
    )
    print("| metric | tfsal (ms) | pysaliency (ms) | pysaliency / tfsal |")
    print("|---|---:|---:|---:|")
    for name, ms in ours.items():
        if name in peer:
            print(f"| {name} | {ms:.2f} | {peer[name]:.2f} | {peer[name] / ms:.1f}x |")
        else:
            print(f"| {name} | {ms:.2f} | n/a | |")
    issue_set = [
        "AUC-Judd",
        "AUC-Borji (MIT, 100 splits)",
        "sAUC (MIT, 100 splits)",
        "NSS",
        "CC",
        "KLD",
        "SIM",
        "IG",
    ]
    total = sum(ours[name] for name in issue_set)
    functions = tfsal_metrics(*inputs)
    wall = median_wall_ms(lambda: [functions[name]() for name in issue_set], args.repeats)
    print(f"| **all eight (MIT defaults)** | **{total:.2f}** | | |")
    print(f"| all eight, wall clock | {wall:.2f} | | |")
    print(f"| EMD (optional, 15x20 grid) | {emd_ms:.1f} | n/a | |")
    print(f"\nTarget: all eight metrics under 50 ms -> {'met' if total < 50 else 'NOT met'}.")


if __name__ == "__main__":
    main()
