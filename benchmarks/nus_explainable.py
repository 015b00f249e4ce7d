r"""Real data: the explainable model of a UNISAL trained on NUS scene, and its speed.

Derives the explainable model (``tfsal.explain`` through ``training.derive``) from a
copy of a finished ``training.fit`` run, so the parent's folder is never written::

    python benchmarks/nus_explainable.py --parent /work/runs/nus-unisal \\
        --out /work/runs/nus-explainable

1. copies ``--parent`` to ``--out`` (an existing ``--out`` must be such a copy);
2. derives, scores and exports the explainable model on the run's own seeded split
   (train on its training images, score on its validation images, next to the
   parent and the centre-bias and spectral-residual baselines);
3. times the explainable model against its parent on the CPU at 288×384, batch 1
   and 8: candidates take turns (one untimed call, then timed calls, per turn) and
   speed-ups are medians of paired per-turn ratios, because the machine is shared;
   the explainable model's time is split into the log-Gabor features (banks, and
   pooled copies with ``derive.pooled_banks``) and the readout (the rest: image
   normalisation, the taps' projections, blurs, upsampling, prior, softmax); the
   saliency reads the reconstructions' projections through folded kernels, so the
   reconstructions themselves are built only for the ``explain`` outputs, and their
   cost is reported beside;
4. prints markdown tables for BENCHMARKS.md and writes ``<out>/benchmark.json``.

``--set derive.KEY=VALUE`` passes derive settings (``training.derive --set``);
``--derive-only`` stops after the derivation and prints its wall and CPU seconds
(no scoring, export or speed table);
``--speed-only`` skips steps 1-2 and times the explainable architecture of the
run's taps with unfitted weights (the same operations, so the same cost), adding
the timings to an existing ``<out>/benchmark.json``.
"""

import argparse
import dataclasses
import datetime
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfsal import explain  # noqa: E402
from tfsal.conventions import SALIENCY, reconstruction_key  # noqa: E402
from tfsal.explain.explainable_model import bank_name  # noqa: E402
from tfsal.io_utils import atomic_write_text  # noqa: E402
from training import configs  # noqa: E402
from training import derive as derive_command  # noqa: E402

COLUMNS = ("CC", "NSS", "AUC-Judd", "sAUC", "SIM", "KLD")
SPEED_SIZE = (288, 384)
SPEED_BATCHES = (1, 8)


def copy_parent(parent: Path, out: Path) -> None:
    """Copies the parent run to ``out`` once; never writes into ``parent``."""
    if parent.resolve() == out.resolve():
        raise SystemExit("error: --out must differ from --parent (the parent is read-only).")
    if not (parent / configs.CONFIG_FILE).is_file():
        raise SystemExit(f"error: {parent} is not a training.fit run folder (no config.yaml).")
    if out.exists():
        if not (out / configs.CONFIG_FILE).is_file():
            raise SystemExit(f"error: {out} exists and is no run folder; choose a new --out.")
        print(f"benchmark: re-deriving in the existing copy {out}")
        return
    shutil.copytree(parent, out, ignore=shutil.ignore_patterns("*_explainable"))
    print(f"benchmark: copied {parent} -> {out}")


def derive_and_score(out: Path, config, report: dict, score: bool = True):
    """Derives, scores and exports; returns (derivation, parent model, metrics).

    Records the derivation's own wall and CPU seconds (``derive_seconds``,
    ``derive_cpu_seconds``: this process, all threads) in ``report``; with
    ``score=False`` stops after the derivation (metrics ``None``).
    """
    from training import callbacks, distributed, job, trainer

    strategy = distributed.choose_strategy(config.strategy)
    dataset, train_ids, val_ids = job.load_split(config)
    model = trainer.build_model(dataclasses.replace(config, weights=None, encoder_weights=None))
    callbacks.restore_state(derive_command.best_checkpoint(out), model, with_optimizer=False)
    outputs = job.RunOutputs(out, out / configs.CONFIG_FILE, out / job.CHECKPOINTS, out / job.LOGS)
    wall, cpu = time.monotonic(), time.process_time()
    derivation = job.derive_explainable(
        config, model, dataset, train_ids, val_ids, outputs, strategy
    )
    report["derive_seconds"] = time.monotonic() - wall
    report["derive_cpu_seconds"] = time.process_time() - cpu
    print(
        f"benchmark: derivation {report['derive_seconds']:.0f} s wall, "
        f"{report['derive_cpu_seconds']:.0f} s CPU",
        flush=True,
    )
    if not score:
        return derivation, model, None
    metrics = job.evaluate(config, dataset, val_ids, model, derivation.model)
    job.write_metrics(outputs, metrics, len(val_ids))
    job.export(config, derivation.model, outputs, name=job.explainable_name(config))
    return derivation, model, metrics


def quality_table(metrics: dict, parent_name: str) -> list[str]:
    """Markdown rows: every model's scores and the explainable model's share of its parent."""
    results = metrics["results"]
    lines = [
        "| model | " + " | ".join(COLUMNS) + " | % of parent CC | % of parent NSS |",
        "| --- " * (len(COLUMNS) + 3) + "|",
    ]
    parent = results[parent_name]
    for name, scores in results.items():
        cells = [f"{scores[column]:.3f}" for column in COLUMNS]
        shares = [f"{100 * scores[m] / parent[m]:.0f}%" for m in ("CC", "NSS")]
        lines.append(f"| {name} | " + " | ".join(cells + shares) + " |")
    return lines


def fidelity_table(fidelity: dict) -> list[str]:
    lines = [
        "| tap | stride | channels | l2 | validation R² | mean channel CC |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for tap, scores in fidelity["taps"].items():
        lines.append(
            f"| {tap} | 1/{scores['stride']} | {scores['channels']} | {scores['l2']:g} | "
            f"{scores['r2']:.3f} | {scores['mean_cc']:.3f} |"
        )
    saliency = fidelity["saliency"]
    lines.append(
        f"\nExplainable vs parent saliency on {saliency['images']} validation images: "
        f"CC {saliency['cc']:.3f}, KLD {saliency['kld']:.3f}."
    )
    return lines


def speed_models(config, out: Path, derivation) -> dict:
    """Parent and explainable parts at SPEED_SIZE, with the run's weights when fitted."""
    from training import callbacks, trainer

    size_config = dataclasses.replace(
        config, image_size=list(SPEED_SIZE), weights=None, encoder_weights=None
    )
    parent = trainer.build_model(size_config)
    callbacks.restore_state(derive_command.best_checkpoint(out), parent, with_optimizer=False)
    kind = derivation.output_kind if derivation is not None else _output_kind(config)
    if derivation is not None:
        taps = derivation.taps
    else:
        tapped, names = _tapped(size_config, parent)
        taps = explain.check_parent(tapped, SPEED_SIZE, taps=names, output_kind=kind)
    model = explain.build_explainable_model(
        taps,
        output_kind=kind,
        input_shape=(*SPEED_SIZE, 3),
        blur_sigma=config.derive.blur_sigma,
        context_sigmas=tuple(config.derive.context_sigmas or ()),
        prior_widths=config.derive.prior_widths,
        image_normalisation=bool(config.derive.image_normalisation),
        normalisation_statistics=tuple(config.derive.normalisation_statistics or ("ratio",)),
        reconstruction_kernel_size=config.derive.reconstruction_kernel_size or 1,
        pooled_banks=bool(config.derive.pooled_banks),
        normalisation_sigma=config.derive.normalisation_sigma or 32.0,
        name="explainable_speed",
    )
    if derivation is not None:
        model.set_weights(derivation.model.get_weights())
    strides = sorted({tap.stride for tap in taps})
    banks = [model.get_layer(bank_name(stride)).output for stride in strides]
    outputs = model.output
    recon = [outputs[reconstruction_key(t.name)] for t in taps]
    parts = {
        "parent": parent,
        "explainable": keras.Model(model.input, outputs[SALIENCY]),
        "explainable + contributions": model,
        "banks": keras.Model(model.input, banks),
        "banks + reconstructions": keras.Model(model.input, recon),
    }
    return {name: tf.function(lambda x, m=m: m(x, training=False)) for name, m in parts.items()}


def _tapped(config, parent):
    from training import job

    tapped, taps = job.tapped_parent(config, parent)
    return tapped, taps


def _output_kind(config):
    from tfsal import models

    return models.model_info(config.model).output


def measure(candidates: dict, images, repeats: int, calls: int = 3) -> dict:
    """Wall seconds per call of every candidate, one list entry per turn.

    In every turn each candidate runs once untimed (to find its data in the caches
    again after the others ran), then ``calls`` times timed.
    """
    wall = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, run in candidates.items():
            tf.nest.map_structure(lambda t: t.numpy(), run(images))
            start = time.perf_counter()
            for _ in range(calls):
                tf.nest.map_structure(lambda t: t.numpy(), run(images))
            wall[name].append((time.perf_counter() - start) / calls)
    return {name: np.array(times) for name, times in wall.items()}


def summarise(wall: dict) -> dict:
    """Median ms per candidate, paired speed-ups over the parent and the time split.

    Speed-ups and the split (banks; readout = explainable minus banks; and, off the
    saliency's path, reconstructions = banks + reconstructions minus banks) are
    medians over turns of per-turn values, since the candidates of one turn ran
    seconds apart.
    """
    median_ms = lambda times: 1e3 * float(np.median(times))  # noqa: E731
    parent = wall["parent"]
    return {
        "ms": {name: median_ms(times) for name, times in wall.items()},
        "speedup": {name: float(np.median(parent / times)) for name, times in wall.items()},
        "split_ms": {
            "banks": median_ms(wall["banks"]),
            "reconstructions": median_ms(wall["banks + reconstructions"] - wall["banks"]),
            "readout": median_ms(wall["explainable"] - wall["banks"]),
        },
    }


def load_images(batch: int, height: int, width: int) -> np.ndarray:
    """The first ``batch`` NUS scene stimuli resized to (height, width), RGB 0..255."""
    from PIL import Image

    from tfsal.paths import nus_scene_dir

    stimuli = sorted((nus_scene_dir() / "stimuli").glob("*.jpg"))[:batch]
    if not stimuli:
        raise SystemExit(f"error: no NUS scene stimuli under {nus_scene_dir()}.")
    pictures = [Image.open(path).convert("RGB").resize((width, height)) for path in stimuli]
    return np.stack([np.asarray(p) for p in pictures]).astype("float32")


def speed_table(candidates: dict, repeats: int) -> tuple[list[str], dict]:
    lines = [
        "| batch | H×W | parent (ms) | explainable (ms) | speed-up | with contributions (ms) "
        "| speed-up | banks (ms) | readout (ms) | reconstructions, for `explain` (ms) |",
        "| --- " * 10 + "|",
    ]
    print("\n".join(lines), flush=True)
    results = {}
    for batch in SPEED_BATCHES:
        images = tf.constant(load_images(batch, *SPEED_SIZE))
        row = summarise(measure(candidates, images, repeats))
        results[batch] = row
        ms, speedup, split = row["ms"], row["speedup"], row["split_ms"]
        lines.append(
            f"| {batch} | {SPEED_SIZE[0]}×{SPEED_SIZE[1]} | {ms['parent']:.0f} | "
            f"{ms['explainable']:.1f} | {speedup['explainable']:.1f}× | "
            f"{ms['explainable + contributions']:.1f} | "
            f"{speedup['explainable + contributions']:.1f}× | {split['banks']:.1f} | "
            f"{split['readout']:.1f} | {split['reconstructions']:.1f} |"
        )
        print(lines[-1], flush=True)
    return lines, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parent", default="/work/runs/nus-unisal", help="training.fit run")
    parser.add_argument("--out", required=True, help="where the parent is copied and derived")
    parser.add_argument("--readout", choices=("linear", "decoder"), default=None)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--speed-repeats", type=int, default=5)
    parser.add_argument("--speed-only", action="store_true")
    parser.add_argument("--no-speed", action="store_true")
    parser.add_argument(
        "--derive-only",
        action="store_true",
        help="time the derivation alone: no scoring, export or speed table",
    )
    args = parser.parse_args()
    parent_run, out = Path(args.parent), Path(args.out)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    report = {"started": stamp, "load_before": os.getloadavg(), "parent": str(parent_run)}
    print(f"benchmark: {stamp}, load average {report['load_before']}")
    derivation = None
    lines = []
    if not args.speed_only:
        copy_parent(parent_run, out)
    command_args = argparse.Namespace(
        taps=None, readout=args.readout, readout_epochs=None, fine_tune_epochs=None, set=args.set
    )
    config = derive_command.load_run_config(out if out.exists() else parent_run, command_args)
    if not args.speed_only:
        started = time.monotonic()
        derivation, _, metrics = derive_and_score(out, config, report, not args.derive_only)
        report["derive_and_score_seconds"] = time.monotonic() - started
        report["metrics"] = metrics
        report["fidelity"] = derivation.fidelity
        if args.derive_only:
            lines += fidelity_table(derivation.fidelity)
        else:
            lines += [
                f"Validation: {metrics['n_images']} images; derive + score + export "
                f"{report['derive_and_score_seconds']:.0f} s wall.",
                "",
                *quality_table(metrics, config.model),
                "",
                *fidelity_table(derivation.fidelity),
                "",
            ]
    print("\n" + "\n".join(lines), flush=True)
    if not (args.no_speed or args.derive_only):
        candidates = speed_models(config, out if out.exists() else parent_run, derivation)
        speed_lines, report["speed"] = speed_table(candidates, args.speed_repeats)
        lines += speed_lines
    report["load_after"] = os.getloadavg()
    lines.append(
        f"\nLoad average (1, 5, 15 min) before {tuple(round(x, 1) for x in report['load_before'])}"
        f", after {tuple(round(x, 1) for x in report['load_after'])} (2 cores)."
    )
    print(lines[-1])  # the rest was printed as it came
    if out.exists():
        path = out / "benchmark.json"
        if args.speed_only and path.is_file():  # keep the derivation's scores
            report = {**json.loads(path.read_text()), "speed": report["speed"]}
        atomic_write_text(path, json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
