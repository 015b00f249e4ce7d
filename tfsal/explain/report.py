"""The numbers of the interpretation report: what each tap of a deep model computes.

The four aspects of the authors' follow-up (CVIU 2023; DESIGN.md §3), measured on a
few images for an explainable model and its parent:

1. fidelity: every tap's activation maps against their reconstructions (R²);
2. feature importance per tap by colour channel, scale and orientation, as weight
   magnitude × feature spread, as the drop in validation R² when the ridge is refitted
   without the group (``group_refit``, from the derivation's normal equations; for
   a run that did not keep them, the drop on the report's images with the group's
   standardised features set to their mean, 0, not refitted), and as the drop in
   saliency CC (against the parent) when the group's contributions are removed;
3. positional bias: the share of every reconstruction (and activation) that the
   centre prior's Gaussian maps explain, and the centre prior's share of the
   saliency logits;
4. colour processing: the colour axes of the parent's first convolution on RGB
   compared with YUV, opponent and Lab (principal angles).

``analyse`` returns an ``Analysis``: ``numbers`` (JSON-ready, every plotted number)
and ``maps`` (the arrays the figures draw). A ``decoder`` readout feeds the
reconstructions through the parent's frozen, non-linear decoder, so its saliency is
no sum of per-group maps: the numbers that need contributions (the saliency CC drop
per group, the prior's share of the logits, the contribution maps) are ``None``.
"""

import dataclasses
import re

import keras
import numpy as np
import scipy.linalg
import tensorflow as tf

from tfsal import metrics
from tfsal.conventions import CONTRIBUTIONS, LOG_DENSITY, SALIENCY, reconstruction_key
from tfsal.explain import group_refit
from tfsal.explain import taps as taps_lib
from tfsal.explain.centre_prior import DEFAULT_WIDTHS
from tfsal.explain.contributions import PRIOR_GROUP, feature_group_name
from tfsal.explain.explainable_model import (
    group_names,
    log_gabor_bank,
    reconstruction_layers,
    tap_features,
)
from tfsal.layers import colour

ASPECTS = ("colour", "scale", "orientation")
# How ``tap_importance`` measured the drop in R² when a group is removed.
R2_DROP_METHODS = ("refit", "zeroed")
_GROUP = re.compile(r"^(?P<colour>[^/]+)/(?:lowpass|scale(?P<scale>\d+)/orientation(?P<o>\d+))$")


@dataclasses.dataclass
class Analysis:
    """The report's numbers and the maps its figures draw.

    Attributes:
        numbers: JSON-ready dict (``readout``, ``fidelity``, ``importance``,
            ``saliency_cc_drop``, ``centre_bias``, ``colour_transform``, ``features``,
            ``groups``; ``saliency_cc_drop``, ``centre_bias["saliency"]`` and
            ``groups`` are ``None`` for a ``decoder`` readout).
        maps: ``images`` (B, H, W, 3), ``activations``/``reconstructions`` (tap ->
            (B, h, w, C)), ``contributions`` (B, H, W, G; ``None`` for a
            ``decoder`` readout), ``parent_saliency`` and ``explainable_saliency``
            (B, H, W; densities for a ``log_density`` model).
    """

    numbers: dict
    maps: dict


def parse_group(name: str) -> dict:
    """``"Y/scale0/orientation3"`` -> ``{"colour": "Y", "scale": 0, "orientation": 3}``.

    Low-pass groups have scale and orientation ``None``; the prior gives ``{}``.
    """
    if name == PRIOR_GROUP:
        return {}
    match = _GROUP.match(name)
    if not match:
        raise ValueError(f"Not a feature group name. Received: {name!r}")
    scale, orientation = match["scale"], match["o"]
    return {
        "colour": match["colour"],
        "scale": None if scale is None else int(scale),
        "orientation": None if orientation is None else int(orientation),
    }


def aspect_members(names: list[str]) -> dict[str, dict[str, list[int]]]:
    """Indices of the feature groups by aspect value, e.g. ``{"colour": {"Y": [0, ...]}}``.

    Low-pass groups count for their colour only.
    """
    members = {aspect: {} for aspect in ASPECTS}
    for index, name in enumerate(names):
        parsed = parse_group(name)
        for aspect in ASPECTS:
            value = parsed.get(aspect)
            if value is not None:
                label = value if aspect == "colour" else f"{aspect} {value}"
                members[aspect].setdefault(label, []).append(index)
    return members


def r2_score(prediction: np.ndarray, target: np.ndarray) -> float:
    """1 - residual / total sum of squares, pooled over channels (about channel means)."""
    target = target.reshape(-1, target.shape[-1]).astype(np.float64)
    prediction = prediction.reshape(target.shape).astype(np.float64)
    total = ((target - target.mean(axis=0)) ** 2).sum()
    return float(1.0 - ((target - prediction) ** 2).sum() / total) if total > 0 else float("nan")


def centre_share(maps: np.ndarray) -> float:
    """The share of ``maps``' spatial variance that centred Gaussian maps explain.

    Every (image, channel) map is fitted by least squares on the centre prior's
    Gaussian maps (widths ``DEFAULT_WIDTHS``) and a constant; the share is the pooled
    R² of those fits: 0 for content anywhere, 1 for a pure centre bias.
    """
    batch, height, width, channels = maps.shape
    y = np.linspace(-1.0, 1.0, height)[:, None]
    x = np.linspace(-1.0, 1.0, width)[None, :]
    basis = [np.ones((height, width))]
    basis += [np.exp(-(y**2 + x**2) / (2 * w**2)) for w in DEFAULT_WIDTHS]
    design = np.stack([b.ravel() for b in basis], axis=1)
    targets = np.moveaxis(maps, 3, 1).reshape(batch * channels, -1).T.astype(np.float64)
    solution, *_ = np.linalg.lstsq(design, targets, rcond=None)
    residual = ((targets - design @ solution) ** 2).sum()
    total = ((targets - targets.mean(axis=0)) ** 2).sum()
    return float(1.0 - residual / total) if total > 0 else float("nan")


def _saliency_of_logits(logits: np.ndarray, output_kind: str) -> np.ndarray:
    """(B, H, W) densities (``log_density``) or maps of (B, H, W) logits."""
    if output_kind != LOG_DENSITY:
        return logits
    flat = logits.reshape(len(logits), -1)
    flat = np.exp(flat - flat.max(axis=1, keepdims=True))
    return (flat / flat.sum(axis=1, keepdims=True)).reshape(logits.shape)


def _mean_cc(first: np.ndarray, second: np.ndarray) -> float:
    return float(np.mean([metrics.cc(a, b) for a, b in zip(first, second, strict=True)]))


def _shares(values: dict[str, float]) -> dict[str, float]:
    total = sum(values.values())
    return {key: (value / total if total > 0 else 0.0) for key, value in values.items()}


def _every_copy(members: dict[str, list[int]], num_names: int, num_columns: int) -> dict:
    """Group label -> its columns among ``num_columns`` = n block-major copies of the names."""
    copies = num_columns // num_names
    return {
        label: [i + copy * num_names for copy in range(copies) for i in index]
        for label, index in members.items()
    }


def tap_importance(
    layer,
    scaled: np.ndarray,
    activation: np.ndarray,
    names: list[str],
    statistics: tuple | None = None,
) -> dict:
    """Importance of every colour channel, scale and orientation for one tap.

    Args:
        layer: the tap's ``LinearReconstruction``.
        scaled: (B, h, w, n·K) standardised log-Gabor features of the tap as the
            kernel reads them (``LinearReconstruction.kernel_inputs``): n copies of
            the K features (per-image normalisation, k×k cells), block-major.
        activation: (B, h, w, C) the parent's activations at the tap.
        names: the K feature group names; every copy of a feature is in its group.
        statistics: ``(train, val, l2)``: the derivation's normal equations of the
            tap and its ridge penalty per row (``tfsal.explain.group_refit``), or
            ``None`` when the run did not keep them.

    Returns:
        Per aspect, per value: ``weight_share`` (share of Σ_k ||W_k|| std_k) and
        ``r2_drop``: with ``statistics``, the validation R² of the ridge refitted
        on every group minus that of the ridge refitted without the group (what
        only the group explains); without, the R² on these images of the fitted
        reconstruction minus that with the group's features set to their mean (0),
        not refitted, which can be negative (see ``R2_DROP_METHODS``).
    """
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    bias = keras.ops.convert_to_numpy(layer.bias)
    magnitude = np.linalg.norm(kernel, axis=1) * scaled.reshape(-1, scaled.shape[-1]).std(axis=0)
    full = r2_score(scaled @ kernel + bias, activation)
    result = {}
    for aspect, members in aspect_members(names).items():
        members = _every_copy(members, len(names), scaled.shape[-1])
        weight = {label: float(magnitude[index].sum()) for label, index in members.items()}
        if statistics is not None:
            drops = group_refit.refit_r2_drops(*statistics[:2], members, statistics[2])
        else:
            drops = {}
            for label, index in members.items():
                kept = scaled.copy()
                kept[..., index] = 0.0
                drops[label] = full - r2_score(kept @ kernel + bias, activation)
        result[aspect] = {
            label: {"weight_share": share, "r2_drop": drops[label]}
            for label, share in _shares(weight).items()
        }
    return result


def saliency_drops(
    contributions: np.ndarray, parent: np.ndarray, names: list[str], output_kind: str
) -> dict:
    """The drop in saliency CC against the parent when a group's contributions are removed."""
    logits = contributions.sum(axis=-1)
    full = _mean_cc(_saliency_of_logits(logits, output_kind), parent)
    result = {}
    for aspect, members in aspect_members(names[:-1]).items():
        result[aspect] = {}
        for label, index in members.items():
            without = logits - contributions[..., index].sum(axis=-1)
            cc = _mean_cc(_saliency_of_logits(without, output_kind), parent)
            result[aspect][label] = full - cc
    return result


def prior_share_of_saliency(contributions: np.ndarray, parent: np.ndarray, output_kind: str):
    """How much of the saliency logits the centre prior carries versus image content.

    Returns:
        ``variance_share``: mean over images of Var(prior) / (Var(prior) +
        Var(content)) over the pixels; ``cc_prior_only`` and ``cc_content_only``: CC
        with the parent's saliency of the saliency from either part alone.
    """
    prior = contributions[..., -1]
    content = contributions[..., :-1].sum(axis=-1)
    prior_var = prior.reshape(len(prior), -1).var(axis=1)
    content_var = content.reshape(len(content), -1).var(axis=1)
    share = prior_var / np.maximum(prior_var + content_var, 1e-12)
    return {
        "variance_share": float(share.mean()),
        "cc_prior_only": _mean_cc(_saliency_of_logits(prior, output_kind), parent),
        "cc_content_only": _mean_cc(_saliency_of_logits(content, output_kind), parent),
    }


def first_rgb_convolution(model: keras.Model):
    """The first ``Conv2D`` of ``model`` (nested models included) that reads 3 channels."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D) and layer.kernel.shape[-2] == 3:
            return layer
        if isinstance(layer, keras.Model):
            found = first_rgb_convolution(layer)
            if found is not None:
                return found
    return None


def _lab_jacobian() -> np.ndarray:
    """Lab's linearisation at mid-grey: (3 Lab, 3 RGB), rows scaled to unit length."""
    rgb = tf.Variable([[0.5, 0.5, 0.5]], dtype=tf.float64)
    with tf.GradientTape() as tape:
        lab = colour.rgb_to_lab(rgb)[0]
    return tape.jacobian(lab, rgb).numpy()[:, 0, :]


def colour_transform(model: keras.Model) -> dict | None:
    """The parent's first-layer colour axes compared with YUV, opponent and Lab.

    The first convolution's kernel (kh, kw, 3, F) is read as kh·kw·F colour
    filters; the left singular vectors of the (3, kh·kw·F) matrix are the colour axes
    it uses, strongest first. For each reference transform, the principal angle (in
    degrees) between the strongest axis and the reference's achromatic row, and the
    largest principal angle between the plane of the two weaker axes and the
    reference's chromatic plane. ``None`` when the model has no such convolution.
    """
    layer = first_rgb_convolution(model)
    if layer is None:
        return None
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    matrix = np.moveaxis(kernel, 2, 0).reshape(3, -1)
    axes, strengths, _ = np.linalg.svd(matrix, full_matrices=False)
    references = {
        "yuv": (colour.RGB_TO_YUV, 0),
        "opponent": (colour.RGB_TO_OPPONENT, 2),
        "lab": (_lab_jacobian(), 0),
    }
    comparison = {}
    for name, (transform, achromatic) in references.items():
        chromatic = [row for row in range(3) if row != achromatic]
        luminance = scipy.linalg.subspace_angles(axes[:, :1], transform[achromatic][:, None])
        chroma = scipy.linalg.subspace_angles(axes[:, 1:], transform[chromatic].T)
        comparison[name] = {
            "luminance_angle_deg": float(np.degrees(luminance.max())),
            "chroma_angle_deg": float(np.degrees(chroma.max())),
        }
    return {
        "layer": layer.name,
        "axes": axes.T.tolist(),
        "axis_strength": (strengths / strengths.sum()).tolist(),
        "references": comparison,
    }


def analyse(
    parent: keras.Model,
    explainable: keras.Model,
    images: np.ndarray,
    fidelity: dict,
    output_kind: str = LOG_DENSITY,
    image_ids: list[str] | None = None,
    statistics: dict | None = None,
) -> Analysis:
    """Measures the report's numbers on ``images``.

    Args:
        parent: the deep model (its taps found by layer name, as in the derivation).
        explainable: its explainable model (``linear`` or ``decoder`` readout).
        images: (B, H, W, 3) RGB in [0, 255].
        fidelity: the derivation's fidelity dict (``derivation.json``).
        output_kind: the parent's output kind.
        image_ids: names of the images for the captions (default: their index).
        statistics: the derivation's normal equations (``Derivation.statistics``,
            ``group_refit.load_statistics``): the drop in R² per group is then a
            refit; without them, the group is zeroed in the fitted reconstruction.

    Raises:
        ValueError: if the explainable model has no reconstruction layers, or
            ``statistics`` belong to another derivation.
    """
    layers = reconstruction_layers(explainable)
    tap_names = list(fidelity["taps"])
    if set(tap_names) - set(layers):
        raise ValueError(
            f"The explainable model {explainable.name!r} rebuilds taps {sorted(layers)}, the "
            f"fidelity record lists {tap_names}: derive the model again."
        )
    tapped = taps_lib.tapped_model(parent, tap_names)
    parent_out = {k: keras.ops.convert_to_numpy(v) for k, v in tapped(images).items()}
    outputs = {k: keras.ops.convert_to_numpy(v) for k, v in explainable(images).items()}
    parent_saliency = parent_out[SALIENCY][..., 0]
    explainable_saliency = outputs[SALIENCY][..., 0]
    if output_kind == LOG_DENSITY:
        parent_saliency = np.exp(parent_saliency)
        explainable_saliency = np.exp(explainable_saliency)
    contributions = outputs.get(CONTRIBUTIONS)
    names = group_names(explainable) if contributions is not None else None

    importance, bias = {}, {"taps": {}}
    for tap in tap_names:
        stride = fidelity["taps"][tap]["stride"]
        bank = log_gabor_bank(explainable)
        features = [feature_group_name(*feature) for feature in bank.feature_names]
        # What the kernel multiplies: with k×k reconstructions, every cell's copy.
        scaled = layers[tap].kernel_inputs(tap_features(explainable, stride, images))
        scaled = keras.ops.convert_to_numpy(scaled)
        importance[tap] = tap_importance(
            layers[tap],
            scaled,
            parent_out[tap],
            features,
            group_refit.checked_statistics(statistics, fidelity, tap, scaled.shape[-1]),
        )
        bias["taps"][tap] = {
            "reconstruction": centre_share(outputs[reconstruction_key(tap)]),
            "activation": centre_share(parent_out[tap]),
        }
    linear = contributions is not None
    bias["saliency"] = (
        prior_share_of_saliency(contributions, parent_saliency, output_kind) if linear else None
    )
    numbers = {
        "readout": "linear" if linear else "decoder",
        "n_images": len(images),
        "image_ids": [str(i) for i in (image_ids or range(len(images)))],
        "fidelity": fidelity,
        "r2_on_report_images": {
            tap: r2_score(outputs[reconstruction_key(tap)], parent_out[tap]) for tap in tap_names
        },
        "importance": importance,
        "r2_drop_method": R2_DROP_METHODS[0 if statistics is not None else 1],
        "saliency_cc_drop": (
            saliency_drops(contributions, parent_saliency, names, output_kind) if linear else None
        ),
        "centre_bias": bias,
        "colour_transform": colour_transform(parent),
        "features": features,
        "groups": names,
    }
    maps = {
        "images": np.asarray(images),
        "activations": {tap: parent_out[tap] for tap in tap_names},
        "reconstructions": {tap: outputs[reconstruction_key(tap)] for tap in tap_names},
        "contributions": contributions,
        "parent_saliency": parent_saliency,
        "explainable_saliency": explainable_saliency,
    }
    return Analysis(numbers, maps)
