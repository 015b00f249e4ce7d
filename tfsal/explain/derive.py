"""Derivation of an explainable model from a deep saliency model (DESIGN.md §1-3).

``derive(parent, train_batches, val_batches)``:

1. measures the parent's taps on the first training batch (stride from the size of
   each activation map relative to the image) and builds the explainable model;
2. sets every reconstruction's feature scaling from the first training batch (of
   every worker);
3. streams the training and the validation images once through the parent and the
   log-Gabor banks, accumulating per-tap normal equations (``RidgeAccumulator``), so
   memory does not grow with the data; under ``MultiWorkerMirroredStrategy`` each
   worker accumulates its own shard and the statistics are summed across workers;
4. solves every reconstruction by ridge regression for each penalty of a small grid
   and keeps the one with the best validation R²;
5. fits the readout (``linear``: the tap readout vectors and the centre prior, by
   gradient descent on the parent's saliency) and optionally fine-tunes
   reconstructions and readout together on the same loss — the model stays linear
   in the log-Gabor features. Neither the parent nor the banks change while it
   does, so the training pass of step 3 also stores the banks' features and the
   parent's saliency of every batch (``FeatureCache``: in memory up to
   ``cache_memory_bytes``, the rest in a temporary folder), and the epochs run only
   the model after its banks;
6. scores its fidelity on the validation images: per tap R² and mean per-channel CC
   of reconstruction vs activation, explainable vs parent saliency (CC, KLD).
"""

import contextlib
import dataclasses
import warnings
from collections.abc import Iterable, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfsal import metrics
from tfsal.conventions import LOG_DENSITY, SALIENCY
from tfsal.explain import taps as taps_lib
from tfsal.explain import workers
from tfsal.explain.batches import batch_images, first_images, with_progress
from tfsal.explain.explainable_model import (
    READOUTS,
    bank_features,
    bank_name,
    build_explainable_model,
    reconstruction_inputs,
    reconstruction_layers,
)
from tfsal.explain.feature_cache import (
    DEFAULT_MEMORY_BYTES,
    FeatureCache,
    bank_layers,
    feature_head,
)
from tfsal.explain.readout_training import ReadoutTrainer
from tfsal.explain.ridge import RidgeAccumulator
from tfsal.explain.taps import Tap

# Ridge penalties tried, per accumulated row: the features are standardised, so the
# Gram matrix's diagonal is about one per row and these span "almost none" to
# "as strong as the data".
L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
# Fewer rows (images x tap pixels) than this many per feature: warn that the
# reconstruction will be fitted to noise (the ridge term keeps it defined).
ROWS_PER_FEATURE = 10


@dataclasses.dataclass
class Derivation:
    """An explainable model and how faithful it is to its parent.

    Attributes:
        model: the explainable model (see ``build_explainable_model``).
        taps: the rebuilt taps with their channels and strides.
        readout: ``"linear"`` or ``"decoder"``.
        output_kind: ``"log_density"`` or ``"map"``, as the parent's.
        fidelity: JSON-ready dict: ``"taps"`` (per tap: stride, channels, chosen l2,
            validation R² and mean per-channel CC, and R² for every l2 tried),
            ``"saliency"`` (mean per-image CC and KLD of the explainable saliency
            against the parent's on the validation images) and ``"rows"``.
        statistics: ``{"train": {tap: RidgeAccumulator}, "val": {...}}``, the normal
            equations the reconstructions were solved from (on the scaled features):
            refitting without a feature group from them is exact and cheap.
    """

    model: keras.Model
    taps: list[Tap]
    readout: str
    output_kind: str
    fidelity: dict
    statistics: dict | None = None


def derive(
    parent: keras.Model,
    train_batches: Iterable,
    val_batches: Iterable,
    *,
    taps: Sequence[str] | None = None,
    readout: str = "linear",
    output_kind: str | None = None,
    bank_config: dict | None = None,
    l2_grid: Sequence[float] = L2_GRID,
    readout_epochs: int = 5,
    fine_tune_epochs: int = 0,
    learning_rate: float = 0.05,
    reconstruction_learning_rate: float = 5e-4,
    blur_sigma: float = 4.0,
    context_sigmas: Sequence[float] = (),
    prior_widths: Sequence[float] | None = None,
    prior_scale: float = 1.0,
    image_normalisation: bool = False,
    reconstruction_kernel_size: int = 1,
    normalisation_statistics: Sequence[str] = ("ratio",),
    pooled_banks: bool = False,
    normalisation_sigma: float | Sequence[float] = 32.0,
    cache_features: bool = True,
    cache_memory_bytes: int = DEFAULT_MEMORY_BYTES,
    strategy: tf.distribute.Strategy | None = None,
    progress: bool = True,
) -> Derivation:
    """Derives the explainable model of ``parent``.

    Example:
    ```python
    parent = tfsal.models.get("cmrnet", taps=tfsal.models.model_info("cmrnet").default_taps)
    derivation = tfsal.explain.derive(parent, train_images, val_images)
    derivation.fidelity["taps"]["stage3"]["r2"]
    derivation.model(images)["contributions"]  # (B, H, W, 73)
    ```

    Args:
        parent: a functional Keras model from (B, H, W, 3) RGB images in [0, 255] to
            its saliency (the ``"saliency"`` of a dict output, or its only output).
        train_batches: re-iterable batches (a ``tf.data.Dataset`` or a list) of images,
            or of ``(images, targets)`` pairs whose targets are ignored; every worker
            must yield the same number of batches.
        val_batches: held-out batches in the same form.
        taps: output keys or layer names of ``parent`` to rebuild; ``None`` for the
            registered default taps of a registered model.
        readout: ``"linear"`` (transparent) or ``"decoder"`` (the parent's frozen
            decoder fed the reconstructed taps).
        output_kind: ``"log_density"`` or ``"map"``; ``None`` for a registered model's.
        bank_config: ``LogGaborBank`` arguments (not ``output_stride``).
        l2_grid: ridge penalties per accumulated row, chosen by validation R².
        readout_epochs: ``linear`` only: epochs of readout fitting, >= 0.
        fine_tune_epochs: epochs of fine-tuning reconstructions and readout together
            on the saliency loss, >= 0.
        learning_rate: Adam learning rate of the readout (fitting and fine-tuning).
        reconstruction_learning_rate: Adam learning rate of the reconstructions in
            fine-tuning, > 0.
        blur_sigma: ``linear`` only: blur of the logits in input pixels, >= 0.
        context_sigmas: ``linear`` only: blurs in input pixels, each > 0, of further
            readout copies per tap, each with its own vector (``TapReadout``).
        prior_widths: ``linear`` only: widths of the centre prior's Gaussian maps
            (``CentrePrior``); ``None`` for its defaults.
        prior_scale: ``linear`` only: factor, >= 0, on the centre prior's fitted
            weights: below 1 the model keeps less of the centre bias it learnt from
            the parent (on NUS, 0.85 traded 0.020 NSS for 0.009 sAUC).
        image_normalisation: also feed the reconstructions every log-Gabor channel
            divided by its mean over the image (``ImageNormalisation``), so that a
            colour or orientation that is rare in the image stands out.
        reconstruction_kernel_size: odd k >= 1: every reconstruction reads the
            log-Gabor features of the k×k tap cells around each pixel, a linear
            convolution (k² times the features in the normal equations).
        normalisation_statistics: with ``image_normalisation``, the normalised
            copies (``ImageNormalisation``'s ``statistics``): ``"ratio"`` and/or
            ``"excess"``.
        normalisation_sigma: with the ``"local"`` statistic, the surround's standard
            deviation in input pixels, or several (each > 0, once): one ``"local"``
            copy per surround, centre-surround contrast at several scales.
        pooled_banks: one log-Gabor bank at the finest tap stride, area-pooled for
            the coarser taps (``build_explainable_model``): about a third of the
            banks' cost.
        cache_features: fit the readout on the banks' features and the parent's
            saliency stored during the training pass (the same updates, without
            re-running the parent and the banks every epoch); ``False`` streams
            ``train_batches`` through both in every epoch.
        cache_memory_bytes: bytes of that store held in memory, the rest going to
            a temporary folder, >= 0.
        strategy: a ``MultiWorkerMirroredStrategy`` to sum statistics across workers
            (each worker passing its own shard); ``None`` for one process.
        progress: show progress bars.

    Returns:
        The ``Derivation``.

    Raises:
        ValueError: for unknown taps, taps that are no whole fraction of the image, an
            unknown output kind, one-shot iterators, empty data, bad settings.
    """
    kind, tap_names = _resolve(parent, taps, readout, output_kind)
    _check_settings(l2_grid, readout_epochs, fine_tune_epochs, learning_rate)
    if not prior_scale >= 0:
        raise ValueError(f"prior_scale must be >= 0. Received: prior_scale={prior_scale!r}")
    if not reconstruction_learning_rate > 0:
        raise ValueError(
            "reconstruction_learning_rate must be > 0. "
            f"Received: reconstruction_learning_rate={reconstruction_learning_rate!r}"
        )
    if not isinstance(cache_memory_bytes, int) or cache_memory_bytes < 0:
        raise ValueError(
            "cache_memory_bytes must be an int >= 0. "
            f"Received: cache_memory_bytes={cache_memory_bytes!r}"
        )
    for name, batches in (("train_batches", train_batches), ("val_batches", val_batches)):
        if iter(batches) is batches:
            raise ValueError(
                f"{name} is a one-shot iterator, but the derivation reads the data several "
                "times; pass a tf.data.Dataset or a list of batches."
            )
    tapped = taps_lib.tapped_model(parent, tap_names)
    decoder = taps_lib.parent_decoder(parent, tap_names) if readout == "decoder" else None
    run_parent = tf.function(lambda images: tapped(images, training=False), reduce_retracing=True)

    sample = first_images(train_batches, "train_batches")
    measured = taps_lib.measure_taps(run_parent(sample), sample.shape, tap_names)
    model = build_explainable_model(
        measured,
        readout=readout,
        output_kind=kind,
        input_shape=tuple(parent.inputs[0].shape[1:]),
        bank_config=bank_config,
        blur_sigma=blur_sigma,
        context_sigmas=context_sigmas,
        prior_widths=prior_widths,
        image_normalisation=image_normalisation,
        reconstruction_kernel_size=reconstruction_kernel_size,
        normalisation_statistics=normalisation_statistics,
        pooled_banks=pooled_banks,
        normalisation_sigma=normalisation_sigma,
        decoder=decoder,
        name=f"{parent.name}_explainable",
    )
    readout_epochs = readout_epochs if readout == "linear" else 0
    cache = None
    if cache_features and (readout_epochs or fine_tune_epochs):
        feature_head(model)  # fails now, not after the first pass, if it cannot stand in
        cache = FeatureCache(cache_memory_bytes)
    stream = _Streamer(model, measured, run_parent, strategy, progress)
    stream.adapt(sample)
    train = stream.accumulate(train_batches, "reconstruction (training images)", cache)
    val = stream.accumulate(val_batches, "reconstruction (validation images)")
    tap_fidelity = _solve(stream.reconstructions, measured, train, val, l2_grid)

    trainer = ReadoutTrainer(
        model, run_parent, kind, learning_rate, strategy, progress, reconstruction_learning_rate
    )
    with cache if cache is not None else contextlib.nullcontext():
        fit_batches = cache if cache is not None else train_batches
        if readout_epochs:
            trainer.fit(fit_batches, readout_epochs, fine_tune=False)
        if fine_tune_epochs:
            trainer.fit(fit_batches, fine_tune_epochs, fine_tune=True)
    if readout == "linear" and prior_scale != 1:
        prior = model.get_layer("centre_prior")
        prior.map_weights.assign(prior.map_weights * prior_scale)
    if fine_tune_epochs:
        for tap in measured:  # the feature scaling is fixed, so the statistics still hold
            layer = stream.reconstructions[tap.name]
            score = val[tap.name].score(layer.kernel.numpy(), layer.bias.numpy())
            tap_fidelity[tap.name].update(r2=score.r2, mean_cc=score.mean_cc)
    fidelity = {
        "readout": readout,
        "output_kind": kind,
        "taps": tap_fidelity,
        "saliency": stream.saliency_fidelity(val_batches, kind),
        "rows": {
            tap.name: {"train": train[tap.name].count, "val": val[tap.name].count}
            for tap in measured
        },
    }
    statistics = {"train": train, "val": val}
    return Derivation(model, measured, readout, kind, fidelity, statistics)


def check_parent(
    parent: keras.Model,
    image_size: Sequence[int],
    *,
    taps: Sequence[str] | None = None,
    readout: str = "linear",
    output_kind: str | None = None,
) -> list[Tap]:
    """Checks that an explainable model can be derived from ``parent``, before any data.

    Runs the parent once on a blank image of ``image_size`` to measure its taps.

    Returns:
        The measured taps.

    Raises:
        ValueError: for unknown taps, taps that are no whole fraction of the image, a
            readout the taps do not allow, or an unknown output kind.
    """
    _, tap_names = _resolve(parent, taps, readout, output_kind)
    tapped = taps_lib.tapped_model(parent, tap_names)
    if readout == "decoder":
        taps_lib.parent_decoder(parent, tap_names)
    blank = tf.zeros((1, *image_size, 3))
    return taps_lib.measure_taps(tapped(blank, training=False), blank.shape, tap_names)


def _resolve(parent, taps, readout, output_kind) -> tuple[str, list[str]]:
    """The output kind and the tap names; raises for a bad readout, kind or taps."""
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {READOUTS}. Received: readout={readout!r}")
    kind = taps_lib.output_kind(parent, output_kind)
    tap_names = list(taps) if taps is not None else taps_lib.default_taps(parent)
    if not tap_names:
        raise ValueError("taps must name at least one layer to rebuild. Received: taps=[]")
    return kind, tap_names


def _check_settings(l2_grid, readout_epochs, fine_tune_epochs, learning_rate):
    if not l2_grid or any(not l2 >= 0 for l2 in l2_grid):
        raise ValueError(f"l2_grid must hold values >= 0. Received: l2_grid={l2_grid!r}")
    for name, value in (("readout_epochs", readout_epochs), ("fine_tune_epochs", fine_tune_epochs)):
        if not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an int >= 0. Received: {name}={value!r}")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be > 0. Received: learning_rate={learning_rate!r}")


class _Streamer:
    """Streams images through the parent and the banks; accumulates per-tap statistics."""

    def __init__(self, model, measured, run_parent, strategy, progress):
        self.model = model
        self.taps = measured
        self.run_parent = run_parent
        self.strategy = strategy
        self.progress = progress
        self.reconstructions = reconstruction_layers(model)
        # The cache holds the banks' features in the order of the feature head's inputs
        # (pooled features are recomputed there from their bank's).
        self.cache_order = [
            next(tap.stride for tap in measured if model.get_layer(bank_name(tap.stride)) is layer)
            for layer in bank_layers(model)
        ]
        self.features = tf.function(
            lambda images: bank_features(model, images), reduce_retracing=True
        )
        self.inputs = tf.function(
            lambda features: {
                stride: reconstruction_inputs(model, stride, value)
                for stride, value in features.items()
            },
            reduce_retracing=True,
        )
        # What the kernels multiply: the scaled features (of the k×k cells) per pixel.
        self.kernel_inputs = tf.function(
            lambda features: {
                tap.name: self.reconstructions[tap.name].kernel_inputs(
                    reconstruction_inputs(model, tap.stride, features[tap.stride])
                )
                for tap in measured
            },
            reduce_retracing=True,
        )
        self.predict = tf.function(lambda images: model(images, training=False)[SALIENCY])

    def adapt(self, images):
        """Sets the feature scaling of every reconstruction from a batch of every worker."""
        features = self.inputs(self.features(images))
        for tap in self.taps:
            rows = features[tap.stride].numpy().reshape(-1, features[tap.stride].shape[-1])
            self.reconstructions[tap.name].adapt(workers.concat_over_workers(self.strategy, rows))

    def accumulate(self, batches, label, cache=None) -> dict[str, RidgeAccumulator]:
        """One pass over ``batches``: the normal equations of every tap, summed over workers.

        Stores every batch's features and parent's saliency in ``cache``, if given.
        """
        accumulators = {}
        for batch in with_progress(batches, label, self.progress):
            images = batch_images(batch)
            activations = self.run_parent(images)
            features = self.features(images)
            if cache is not None:
                cache.append(
                    [features[stride] for stride in self.cache_order], activations[SALIENCY]
                )
            kernel_inputs = self.kernel_inputs(features)
            for tap in self.taps:
                x = kernel_inputs[tap.name].numpy()
                if tap.name not in accumulators:
                    accumulators[tap.name] = RidgeAccumulator(x.shape[-1], tap.channels)
                accumulators[tap.name].update(x, activations[tap.name].numpy())
        if not accumulators:
            raise ValueError(f"No batches to stream for {label}; pass at least one batch.")
        return {name: _sum_accumulator(self.strategy, acc) for name, acc in accumulators.items()}

    def saliency_fidelity(self, batches, kind) -> dict:
        """Mean per-image CC and KLD of the explainable saliency against the parent's."""
        totals = np.zeros(3)
        for batch in with_progress(batches, "fidelity (validation images)", self.progress):
            images = batch_images(batch)
            parent = self.run_parent(images)[SALIENCY].numpy()[..., 0].astype(np.float64)
            explained = self.predict(images).numpy()[..., 0].astype(np.float64)
            if kind == LOG_DENSITY:
                parent, explained = np.exp(parent), np.exp(explained)
            for target, prediction in zip(parent, explained, strict=True):
                # KLD reads a map as a distribution: shift any negative map to 0 first
                # (what it does to the prediction itself).
                target = target - min(target.min(), 0.0)
                if not target.any():
                    target = np.ones_like(target)  # a blank map is a uniform distribution
                totals += (metrics.cc(prediction, target), metrics.kld(prediction, target), 1)
        totals = workers.sum_over_workers(self.strategy, {"totals": totals})["totals"]
        count = totals[2]
        return {
            "cc": float(totals[0] / count),
            "kld": float(totals[1] / count),
            "images": int(count),
        }


def _sum_accumulator(strategy, accumulator: RidgeAccumulator) -> RidgeAccumulator:
    if workers.num_workers(strategy) == 1:
        return accumulator
    count = workers.num_workers(strategy)
    # A common origin (the mean of the workers' origins) lets the sums add element-wise.
    origin = workers.sum_over_workers(
        strategy,
        {"x": accumulator.state()["shift_x"] / count, "y": accumulator.state()["shift_y"] / count},
    )
    state = accumulator.recentred(origin["x"], origin["y"]).state()
    summed = workers.sum_over_workers(strategy, state)
    summed["shift_x"], summed["shift_y"] = origin["x"], origin["y"]
    return RidgeAccumulator.from_state(summed)


def _solve(reconstructions, measured, train, val, l2_grid) -> dict:
    fidelity = {}
    for tap in measured:
        rows, features = train[tap.name].count, train[tap.name].num_features
        if rows < ROWS_PER_FEATURE * (features + 1):
            warnings.warn(
                f"Tap {tap.name!r}: {rows} training rows (images x tap pixels) for {features} "
                f"log-Gabor features; the reconstruction will be fitted to noise. Use at least "
                f"{ROWS_PER_FEATURE * (features + 1)} rows (more or larger images).",
                stacklevel=3,
            )
        tried = {}
        for l2 in l2_grid:
            weights, bias = train[tap.name].solve(l2 * rows)
            tried[l2] = (val[tap.name].score(weights, bias), weights, bias)
        best = max(tried, key=lambda l2: np.nan_to_num(tried[l2][0].r2, nan=-np.inf))
        score, weights, bias = tried[best]
        layer = reconstructions[tap.name]
        layer.kernel.assign(weights.astype("float32"))
        layer.bias.assign(bias.astype("float32"))
        fidelity[tap.name] = {
            "stride": tap.stride,
            "channels": tap.channels,
            "l2": best,
            "r2": score.r2,
            "mean_cc": score.mean_cc,
            "r2_by_l2": {str(l2): tried[l2][0].r2 for l2 in l2_grid},
        }
    return fidelity
