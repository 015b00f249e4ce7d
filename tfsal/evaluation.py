"""Scores saliency models and baselines on a data set with the standard metrics.

``evaluate_models`` gives every model the same images: its prediction is resized
to the original image size, then scored with MIT-convention metrics
(``tfsal.metrics``) against the binary fixation map and the density (the data set's
own, else ``tfsal.data.density``'s). sAUC draws its negatives from the fixations of
10 other evaluated images (Borji); IG is measured against the centre-bias baseline
(the MIT benchmark uses a centre prior). A data set with density maps only gets the
density-based metrics. On data sets with generated stimuli (``popout``) the pop-out
metrics are added (GSI and MSR on the map shifted to a minimum of 0 if it has
negative values; fixations to find on the map min-max scaled to 0..255, as P3O3
reads 8-bit maps; border, the outer band's mean over the map's, > 1 for a frame
artefact). ``score_image`` scores one map.

A model is a predictor, ``image -> (H, W) map`` (``serving.predictor`` builds them
from SavedModels and run folders); ``python -m training.evaluate`` is the command
line, ``training.job`` the main job's evaluation stage.
"""

from collections.abc import Callable, Mapping, Sequence

import cv2
import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from tfsal import baselines
from tfsal.data import density as density_lib
from tfsal.data.popout import PopoutStimulus
from tfsal.data.readers import SaliencyDataset
from tfsal.metrics import functional, popout

DENSITY_METRICS = ("CC", "SIM", "KLD")
FIXATION_METRICS = ("NSS", "AUC-Judd", "AUC-Borji", "sAUC", "IG")
METRICS = ("CC", "NSS", "AUC-Judd", "AUC-Borji", "sAUC", "SIM", "KLD", "IG")
NUM_OTHER_IMAGES = 10  # images whose fixations are sAUC's negatives (Borji)
IG_BASELINE = "centre-bias"


def _other_fixation_map(
    others: Sequence[tuple[np.ndarray, tuple[int, int]]], shape: tuple[int, int]
) -> np.ndarray:
    """Union of other images' fixations, rescaled to ``shape`` (pysaliency's rescaling).

    pysaliency scales pixel-corner coordinates and truncates; records hold pixel-centre
    coordinates, so the corner coordinate is ``fixation + 0.5``. At equal sizes every
    fixation lands on the pixel ``tfsal.data.density.fixation_map`` marks.
    """
    other_map = np.zeros(shape, np.float32)
    for fixations, other_shape in others:
        scaled = (fixations + 0.5) * (np.asarray(shape, np.float64) / np.asarray(other_shape))
        pixels = np.minimum(np.floor(scaled).astype(int), np.asarray(shape) - 1)
        other_map[pixels[:, 0], pixels[:, 1]] = 1.0
    return other_map


def score_image(
    saliency: np.ndarray,
    fixations: np.ndarray | None,
    density: np.ndarray | None,
    other_fixations: np.ndarray | None = None,
    ig_baseline: np.ndarray | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Scores one saliency map with every metric its ground truth allows.

    Args:
        saliency: (H, W) map at the image size.
        fixations: (H, W) binary fixation map, or None.
        density: (H, W) density, or None.
        other_fixations: (H, W) fixation map of other images for sAUC, or None.
        ig_baseline: (H, W) baseline map for IG, or None.
        seed: seed of AUC-Borji's and sAUC's negative sampling.

    Returns:
        Metric name -> value.
    """
    scores = {}
    if density is not None:
        scores["CC"] = functional.cc(saliency, density)
        scores["SIM"] = functional.sim(saliency, density)
        scores["KLD"] = functional.kld(saliency, density)
    if fixations is not None and fixations.any():
        scores["NSS"] = functional.nss(saliency, fixations)
        scores["AUC-Judd"] = functional.auc_judd(saliency, fixations)
        scores["AUC-Borji"] = functional.auc_borji(saliency, fixations, seed=seed)
        if other_fixations is not None and other_fixations.any():
            scores["sAUC"] = functional.auc_shuffled(
                saliency, fixations, other_fixations, seed=seed
            )
        if ig_baseline is not None:
            scores["IG"] = functional.information_gain(saliency, fixations, ig_baseline)
    return scores


def _popout_scores(saliency: np.ndarray, stimulus: PopoutStimulus) -> dict[str, float]:
    """Returns GSI, MSR_targ, MSR_bg, numfix2find and border of one map on its stimulus."""
    target, distractors = stimulus.target_mask, stimulus.distractor_mask
    low, high = float(saliency.min()), float(saliency.max())
    eight_bit = (saliency - low) * (255.0 / (high - low)) if high > low else saliency * 0.0
    # The ratios need a non-negative map; shift only negative ones (pysaliency's rule).
    saliency = saliency - min(low, 0.0)
    tries, _ = popout.fixations_to_find(
        eight_bit,
        popout.target_region(saliency.shape, stimulus.target_centre, stimulus.target_size),
        stimulus.distractor_size,
    )
    return {
        "GSI": popout.gsi(saliency, target, distractors),
        "MSR_targ": popout.msr_target(saliency, target, distractors),
        "MSR_bg": popout.msr_background(saliency, target, distractors),
        "numfix2find": float(tries),
        "border": popout.border_ratio(saliency),
    }


# The metrics' NumPy dot products of whole maps go through BLAS, which splits a
# vector of more than about 10k values over its threads; waking them for every map
# cost more than the products, beside TensorFlow's own threads: one BLAS thread
# halved the CPU seconds of scoring the default run's maps (BENCHMARKS.md, "Default run").
_BLAS_THREADS = 1


def evaluate_models(
    dataset: SaliencyDataset,
    image_ids: Sequence[str],
    models: Mapping[str, Callable[[np.ndarray], np.ndarray]],
    *,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Scores every model on the same images.

    Args:
        dataset: the data set holding the images.
        image_ids: the images to score.
        models: display name -> predictor (``image -> (H, W) map``).
        seed: seed of the random negatives (AUC-Borji, sAUC); the same for every model.
        progress: show progress bars.

    Returns:
        ``{"dataset", "n_images", "results": {model: {metric: mean}}, "metrics_absent":
        {metric: why}, "ig_baseline"}``; pop-out data sets add GSI, MSR_targ, MSR_bg
        and numfix2find.
    """
    image_ids = list(image_ids)
    if not image_ids:
        raise ValueError("image_ids is empty: there is nothing to evaluate.")
    if not models:
        raise ValueError("models is empty: give at least one model or baseline.")
    with threadpool_limits(limits=_BLAS_THREADS, user_api="blas"):
        return _evaluate(dataset, image_ids, models, seed, progress)


def _evaluate(dataset, image_ids, models, seed, progress) -> dict:
    fixations_by_image = {}
    if dataset.has_fixations:
        for image_id in tqdm(image_ids, desc="reading fixations", disable=not progress):
            record = dataset.load(image_id)
            if record.has_fixations:
                fixations_by_image[image_id] = (record.fixations, record.shape)
    absent = {}
    if not fixations_by_image:
        absent = {
            metric: f"{dataset.name} has no discrete fixations (density maps only); "
            f"{metric} is computed from fixations"
            for metric in FIXATION_METRICS
        }
    elif len(fixations_by_image) < 2:
        absent["sAUC"] = "sAUC takes its negatives from other images' fixations; only one has any"
    rng = np.random.default_rng(seed)
    scores = {name: {} for name in models}
    for index, image_id in enumerate(tqdm(image_ids, desc="evaluating", disable=not progress)):
        record = dataset.load(image_id)
        shape = record.shape
        fixated = density = other = None
        if image_id in fixations_by_image:
            fixated = density_lib.fixation_map(record.fixations, shape)
            others = [i for i in fixations_by_image if i != image_id]
            picks = rng.permutation(len(others))[:NUM_OTHER_IMAGES]
            other = _other_fixation_map([fixations_by_image[others[i]] for i in picks], shape)
        if record.density is not None:
            density = record.density
        elif record.has_fixations:
            density = density_lib.density_from_fixations(record.fixations, shape)
        if density is None and fixated is None:
            raise ValueError(
                f"{dataset.name} image {image_id!r} has neither fixations nor density."
            )
        ig_baseline = baselines.centre_bias(record.image)
        stimulus = dataset.stimulus(image_id)
        for name, predict in models.items():
            saliency = np.asarray(predict(record.image), np.float64)
            if saliency.ndim == 3 and saliency.shape[-1] == 1:
                saliency = saliency[..., 0]
            if saliency.ndim != 2 or saliency.size == 0:
                # cv2.resize would read (1, H, W) as H columns of W channels: refuse it.
                raise ValueError(
                    f"model {name!r} on image {image_id!r}: a predictor must return an "
                    f"(H, W) or (H, W, 1) map. Received: shape={saliency.shape}"
                )
            if saliency.shape != shape:
                saliency = cv2.resize(saliency, (shape[1], shape[0]))
            try:
                image_scores = score_image(
                    saliency, fixated, density, other, ig_baseline, seed + index
                )
                if stimulus is not None:
                    image_scores.update(_popout_scores(saliency, stimulus))
            except ValueError as error:
                raise ValueError(f"model {name!r} on image {image_id!r}: {error}") from None
            for metric, value in image_scores.items():
                scores[name].setdefault(metric, []).append(value)
    results = {
        name: {metric: float(np.mean(values)) for metric, values in per_metric.items()}
        for name, per_metric in scores.items()
    }
    return {
        "dataset": dataset.name,
        "n_images": len(image_ids),
        "results": results,
        "metrics_absent": absent,
        "ig_baseline": IG_BASELINE,
    }
