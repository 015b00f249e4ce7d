r"""Readout-only experiments on a derived run: refit the readout, keep the reconstructions.

A whole ``benchmarks/nus_explainable.py`` run streams every image through the parent
and the log-Gabor banks, accumulates and solves the ridge normal equations, fits the
readout, and scores the parent and the baselines too (about 340 CPU-s on NUS). The
readout settings (the logits' blur, the readout copies' widths, the centre prior's
widths, the readout's epochs and learning rate) change none of the reconstructions,
so this script takes them from a run that was derived already and refits only the
readout, on the banks' features and the parent's saliency stored once in ``--cache``
(what ``tfsal.explain.FeatureCache`` holds, one ``.npz`` file per batch, about 160 MB
for the 320 NUS training images)::

    python benchmarks/readout_sweep.py --run /work/runs/lead-nus-excess \
        --cache /work/runs/nss-cache --out /work/runs/nss-sweep.json \
        --variant "recipe:" --variant "blur 2:derive.blur_sigma=2"

The base of every variant is the run's model as it was fitted (its reconstruction
path, logit blur, readout copies and prior widths, read from its layers) with the
readout epochs, learning rate and prior scale of its resolved configuration. Each
``--variant NAME:KEY=VALUE,KEY=VALUE`` changes readout settings (``derive.blur_sigma``,
``derive.context_sigmas``, ``derive.prior_widths``, ``derive.prior_scale``,
``derive.readout_epochs``, ``derive.learning_rate``) or sets
``l2.TAP=VALUE`` to re-solve a tap's reconstruction with another ridge penalty from
the run's saved normal equations (``derivation-statistics.npz``);
``logit_scales=[...]`` and ``prior_scales=[...]`` score the fitted readout with its
logits, or its centre prior, multiplied by each factor; ``keep_readout=true``
scores the run's own readout (with those factors) without fitting one. Settings that
change the reconstructions' inputs (kernel size, normalised copies, taps) are
refused: derive them with ``nus_explainable.py``. The variants are scored on the
run's validation images as ``training.fit`` scores the explainable model (only that
model: the parent's and the baselines' rows are the run's ``metrics.json``), and
every result is added to ``--out`` as soon as it is known.
"""

import argparse
import dataclasses
import itertools
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402

from tfsal import explain, models  # noqa: E402
from tfsal.data.pipeline import make_pipeline  # noqa: E402
from tfsal.evaluation import evaluate_models  # noqa: E402
from tfsal.explain import explainable_model, group_refit  # noqa: E402
from tfsal.explain.feature_cache import FeatureCache, bank_layers  # noqa: E402
from tfsal.explain.readout_training import ReadoutTrainer  # noqa: E402
from tfsal.io_utils import atomic_write_text  # noqa: E402
from training import configs  # noqa: E402

# Derive fields a variant may change: none of them changes a reconstruction.
READOUT_FIELDS = (
    "blur_sigma",
    "context_sigmas",
    "prior_widths",
    "prior_scale",
    "readout_epochs",
    "learning_rate",
)
# LogGaborBank arguments the variant's banks copy from the run's (not output_stride).
BANK_ARGUMENTS = (
    "num_scales",
    "num_orientations",
    "min_wavelength",
    "mult",
    "sigma_onf",
    "angular_window",
    "theta_sigma_ratio",
    "colour_space",
    "value_range",
    "padding",
    "lowpass_residual",
    "passband_threshold",
)


def parse_variant(text: str) -> tuple[str, dict, dict, dict]:
    """``NAME:KEY=VALUE,...`` -> (name, derive overrides, l2 per tap, scoring options).

    The options: ``logit_scales`` and ``prior_scales`` (lists of factors, each
    scored on the one fitted readout) and ``keep_readout`` (score the run's own
    fitted readout instead of fitting one: no cache, no epochs).
    """
    name, separator, settings = text.partition(":")
    if not separator or not name:
        raise SystemExit(f"error: --variant needs NAME:KEY=VALUE,... Received: {text!r}")
    overrides, l2 = {}, {}
    options = {"logit_scales": [1.0], "prior_scales": [1.0], "keep_readout": False}
    for item in filter(None, _split_top_level(settings)):
        key, separator, value = item.partition("=")
        key = key.strip()
        if not separator:
            raise SystemExit(f"error: variant {name!r}: {item!r} is no KEY=VALUE.")
        if key in ("logit_scales", "prior_scales"):
            options[key] = [float(v) for v in yaml.safe_load(value)]
        elif key == "keep_readout":
            options[key] = bool(yaml.safe_load(value))
        elif key.startswith("l2."):
            l2[key[3:]] = float(value)
        elif key.startswith("derive.") and key[7:] in READOUT_FIELDS:
            overrides[key[7:]] = yaml.safe_load(value)
        else:
            raise SystemExit(
                f"error: variant {name!r}: {key!r} is not a readout setting; use "
                f"derive.{{{', '.join(READOUT_FIELDS)}}}, l2.TAP, logit_scales, "
                "prior_scales or keep_readout."
            )
    if options["keep_readout"] and (overrides or l2):
        raise SystemExit(
            f"error: variant {name!r}: keep_readout scores the run's fitted readout, so it "
            "takes no derive settings or l2 (only logit_scales and prior_scales)."
        )
    return name, overrides, l2, options


def _split_top_level(text: str) -> list[str]:
    """Splits at commas outside brackets (``derive.context_sigmas=[8, 16]`` stays whole)."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "["
        depth -= char == "]"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def fitted_model(run: Path) -> keras.Model:
    """The run's exported explainable model (its newest version's ``model.keras``)."""
    versions = sorted(
        (run / "export").glob("*_explainable/*/model.keras"), key=lambda p: int(p.parent.name)
    )
    if not versions:
        raise SystemExit(
            f"error: {run} has no export/*_explainable/<version>/model.keras; derive it first "
            "(benchmarks/nus_explainable.py)."
        )
    return keras.models.load_model(versions[-1], compile=False)


def build_cache(config, fitted, folder: Path) -> FeatureCache:
    """The banks' features and the parent's saliency of the derivation's training batches.

    Read from ``folder`` when it holds them, else computed and written there.
    """
    from training import callbacks, job, trainer
    from training import derive as derive_command

    cache = FeatureCache()
    files = sorted(folder.glob("batch-*.npz"))
    if files:
        for path in files:
            with np.load(path) as arrays:
                count = len(arrays.files)
                cache.append([arrays[f"a{i}"] for i in range(count - 1)], arrays[f"a{count - 1}"])
        print(f"sweep: {len(cache)} cached batches from {folder}")
        return cache
    folder.mkdir(parents=True, exist_ok=True)
    dataset, train_ids, _ = job.load_split(config)
    parent = trainer.build_model(dataclasses.replace(config, weights=None, encoder_weights=None))
    callbacks.restore_state(
        derive_command.best_checkpoint(Path(config.out)), parent, with_optimizer=False
    )
    batches = make_pipeline(
        dataset,
        train_ids[: config.derive.max_images],
        image_size=tuple(config.image_size),
        resize=config.resize,
        batch_size=config.derive.batch_size or config.batch_size,
    )
    banks = bank_layers(fitted)
    for index, (images, _) in enumerate(batches):
        arrays = [bank(images) for bank in banks] + [parent(images, training=False)["saliency"]]
        arrays = [np.asarray(array, np.float32) for array in arrays]
        np.savez(folder / f"batch-{index:04d}.npz", **{f"a{i}": a for i, a in enumerate(arrays)})
        cache.append(arrays[:-1], arrays[-1])
        print(f"\rsweep: caching batch {index + 1}", end="", flush=True)
    print()
    return cache


def run_taps(run: Path) -> list:
    """The taps a run's explainable model rebuilds, from its ``derivation.json``."""
    fidelity = json.loads((run / "derivation.json").read_text())
    return [
        explain.Tap(name, tap["channels"], tap["stride"]) for name, tap in fidelity["taps"].items()
    ]


def reconstruction_path(fitted, taps) -> dict:
    """``build_explainable_model`` arguments that rebuild ``fitted``'s reconstruction inputs.

    Read from the model's layers, not from the run's configuration: a run saved
    before a setting existed resolves it to today's recipe, which may differ from
    what the run was derived with (three banks, not pooled ones).
    """
    finest = min(tap.stride for tap in taps)
    bank = explainable_model.log_gabor_bank(fitted).get_config()
    path = {
        "bank_config": {key: bank[key] for key in BANK_ARGUMENTS},
        "pooled_banks": len(bank_layers(fitted)) < len({tap.stride for tap in taps}),
        "reconstruction_kernel_size": next(
            iter(explain.reconstruction_layers(fitted).values())
        ).kernel_size,
        "image_normalisation": False,
    }
    names = {layer.name for layer in fitted.layers}
    if explainable_model.normalisation_name(finest) in names:
        normalisation = fitted.get_layer(explainable_model.normalisation_name(finest))
        path.update(
            image_normalisation=True,
            normalisation_statistics=tuple(normalisation.statistics),
            normalisation_sigma=[sigma * finest for sigma in normalisation.local_sigmas],
        )
    return path


def fitted_readout(fitted, taps) -> dict:
    """The readout settings ``fitted`` was built with (blurs in input pixels, prior widths)."""
    readouts = explain.tap_readouts(fitted)
    tap = taps[0]
    layer = readouts[tap.name]
    return {
        "blur_sigma": layer.blur_sigma * tap.stride,
        "context_sigmas": [sigma * tap.stride for sigma in layer.context_sigmas],
        "prior_widths": list(fitted.get_layer("centre_prior").widths),
    }


def variant_model(fitted, taps, kind, derive, overrides: dict, l2: dict, statistics=None):
    """The explainable model with the variant's readout and ``fitted``'s reconstructions.

    Args:
        fitted: the run's explainable model.
        taps: its taps (``run_taps``).
        kind: the output kind, ``"log_density"`` or ``"map"``.
        derive: the run's resolved ``DeriveConfig``: only its readout epochs and
            learning rate count (the rest is read from ``fitted``).
        overrides: readout settings (``READOUT_FIELDS``) that replace the run's.
        l2: tap -> ridge penalty per row: that reconstruction is solved again.
        statistics: the run's normal equations (``group_refit.load_statistics``),
            needed with ``l2``.

    Returns:
        The model, its readout unfitted (zeros, as the derivation starts it).
    """
    settings = {field: getattr(derive, field, None) for field in READOUT_FIELDS}
    settings.update(fitted_readout(fitted, taps), **overrides)
    model = explain.build_explainable_model(
        taps,
        output_kind=kind,
        input_shape=tuple(fitted.input.shape[1:]),
        blur_sigma=settings["blur_sigma"],
        context_sigmas=tuple(settings["context_sigmas"] or ()),
        prior_widths=settings["prior_widths"],
        name=fitted.name,
        **reconstruction_path(fitted, taps),
    )
    source = explain.reconstruction_layers(fitted)
    for tap, layer in explain.reconstruction_layers(model).items():
        layer.set_weights(source[tap].get_weights())
        if tap in l2:
            train = statistics["train"][tap]
            layer.set_ridge_solution(train, l2[tap] * train.count)
    return model


def scale_logits(model: keras.Model, factor: float) -> None:
    """Multiplies the fitted logits by ``factor`` (a temperature of 1 / factor).

    Every readout vector and the centre prior scale together: the model stays the
    same linear family, with the log-density sharper (``factor`` > 1) or flatter.
    """
    for layer in explain.tap_readouts(model).values():
        for weight in layer.readout_weights():
            weight.assign(weight * factor)
    prior = model.get_layer("centre_prior")
    prior.map_weights.assign(prior.map_weights * factor)


def scale_prior(model: keras.Model, factor: float) -> None:
    """Multiplies the fitted centre prior's map weights by ``factor`` (``derive.prior_scale``)."""
    prior = model.get_layer("centre_prior")
    prior.map_weights.assign(prior.map_weights * factor)


def score(config, model) -> dict:
    """The explainable model's scores on the run's validation images."""
    from serving.predictor import predictor_from_function
    from training import job

    dataset, _, val_ids = job.load_split(config)
    kind = models.model_info(config.model).output
    predictor = predictor_from_function(
        job._saliency_function(model), config.image_size, kind, resize=config.resize
    )
    results = evaluate_models(dataset, val_ids, {"explainable": predictor}, seed=config.seed)
    return results["results"]["explainable"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="a run derived by nus_explainable.py")
    parser.add_argument(
        "--cache", help="folder of the cached training batches (not needed with keep_readout)"
    )
    parser.add_argument("--out", required=True, help="JSON file the results are added to")
    parser.add_argument("--variant", action="append", required=True, metavar="NAME:KEY=VALUE,..")
    args = parser.parse_args()
    run, out = Path(args.run), Path(args.out)
    variants = [parse_variant(text) for text in args.variant]
    config = configs.resolve_model_defaults(configs.read_run_config(run))
    config = dataclasses.replace(config, out=str(run))
    fitted = fitted_model(run)
    taps, kind = run_taps(run), models.model_info(config.model).output
    cache = None
    if not all(options["keep_readout"] for *_, options in variants):
        if args.cache is None:
            raise SystemExit("error: --cache is needed to fit a readout (all but keep_readout).")
        cache = build_cache(config, fitted, Path(args.cache))
    statistics = None
    if any(l2 for _, _, l2, _ in variants):
        statistics = group_refit.load_statistics(run / group_refit.STATISTICS_FILE)
    parent = json.loads((run / "metrics.json").read_text())["results"][config.model]
    results = json.loads(out.read_text()) if out.is_file() else {}
    for name, overrides, l2, options in variants:
        wall, cpu = time.monotonic(), time.process_time()
        model = variant_model(fitted, taps, kind, config.derive, overrides, l2, statistics)
        settings = {**overrides, **{f"l2.{tap}": value for tap, value in l2.items()}}
        layers = explain.reconstruction_layers(model)
        # Validation R² of every re-solved reconstruction (the run's for the others).
        r2 = {
            tap: statistics["val"][tap]
            .score(layers[tap].kernel.numpy(), layers[tap].bias.numpy())
            .r2
            for tap in l2
        }
        if options["keep_readout"]:
            model.set_weights(fitted.get_weights())
            settings["keep_readout"] = True
        else:
            epochs = overrides.get("readout_epochs", config.derive.readout_epochs)
            rate = overrides.get("learning_rate", config.derive.learning_rate)
            trainer = ReadoutTrainer(model, None, kind, rate, None, True)
            trainer.fit(cache, epochs, fine_tune=False)
            # As the derivation does after fitting (derive.prior_scale).
            scale_prior(model, overrides.get("prior_scale", config.derive.prior_scale or 1.0))
        fitted_weights = model.get_weights()
        for logit_scale, prior_scale in itertools.product(
            options["logit_scales"], options["prior_scales"]
        ):
            model.set_weights(fitted_weights)
            scale_prior(model, prior_scale)
            scale_logits(model, logit_scale)
            label = name
            if len(options["logit_scales"]) > 1:
                label += f", logits x {logit_scale:g}"
            if len(options["prior_scales"]) > 1:
                label += f", prior x {prior_scale:g}"
            scores = score(config, model)
            results[label] = {
                "settings": {**settings, "logit_scale": logit_scale, "prior_scale": prior_scale},
                "validation_r2": r2,
                "scores": scores,
                "share_of_parent": {m: scores[m] / parent[m] for m in ("CC", "NSS")},
                "wall_seconds": time.monotonic() - wall,
                "cpu_seconds": time.process_time() - cpu,
            }
            atomic_write_text(out, json.dumps(results, indent=2))
            shares = f"{100 * scores['CC'] / parent['CC']:.1f}% / "
            shares += f"{100 * scores['NSS'] / parent['NSS']:.1f}%"
            print(
                f"sweep: {label}: CC {scores['CC']:.3f} NSS {scores['NSS']:.3f} "
                f"sAUC {scores['sAUC']:.3f} KLD {scores['KLD']:.3f} ({shares}), "
                f"{results[label]['cpu_seconds']:.0f} CPU-s",
                flush=True,
            )


if __name__ == "__main__":
    main()
