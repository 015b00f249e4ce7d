"""Saliency metrics: pure numpy functions and Keras metric classes.

``tfsal.metrics.functional`` documents each metric's convention (MIT benchmark by
default, pysaliency by a named argument where the two differ); ``tfsal.metrics.roc``
holds the AUC family and ``tfsal.metrics.popout`` the odd-one-out metrics of pop-out
search arrays (GSI, MSR, fixations to find). The Keras classes of
``tfsal.metrics.keras_metrics`` are imported on first use, so the numpy functions
do not pay for importing TensorFlow; they and ``tfsal.losses`` share one TensorFlow
implementation of CC, NSS and KLD (``tfsal.metrics.tensor_metrics``).
``LOWER_IS_BETTER`` names the scores where lower is better.
"""

import importlib

from tfsal.metrics.functional import (
    EPS,
    auc_borji,
    auc_judd,
    auc_shuffled,
    cc,
    emd,
    information_gain,
    kld,
    nss,
    sim,
)
from tfsal.metrics.popout import (
    border_ratio,
    fixations_to_find,
    gsi,
    msr_background,
    msr_target,
    target_region,
)

# Scores where lower is better, by the names ``tfsal.evaluation`` reports them under;
# every other score is higher-is-better. KLD is a divergence from the ground truth,
# MSR_bg the background's peak over the target's, numfix2find the fixations a search
# needs before it lands on the target, border the border band's mean over the map's.
LOWER_IS_BETTER = frozenset({"KLD", "MSR_bg", "numfix2find", "border"})

_KERAS_METRICS = (
    "AUCJudd",
    "CorrelationCoefficient",
    "KLDivergence",
    "NormalizedScanpathSaliency",
    "SaliencyMetric",
    "Similarity",
)


def __getattr__(name):
    if name in _KERAS_METRICS:
        return getattr(importlib.import_module("tfsal.metrics.keras_metrics"), name)
    raise AttributeError(f"module 'tfsal.metrics' has no attribute {name!r}")


__all__ = [
    "EPS",
    "LOWER_IS_BETTER",
    "auc_borji",
    "border_ratio",
    "auc_judd",
    "auc_shuffled",
    "cc",
    "emd",
    "fixations_to_find",
    "gsi",
    "information_gain",
    "kld",
    "msr_background",
    "msr_target",
    "nss",
    "sim",
    "target_region",
    *_KERAS_METRICS,
]
