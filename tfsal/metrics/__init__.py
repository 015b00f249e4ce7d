"""Saliency metrics: pure numpy functions and Keras metric classes.

``tfsal.metrics.functional`` documents each metric's convention (MIT benchmark by
default, pysaliency by a named argument where the two differ). The Keras classes of
``tfsal.metrics.keras_metrics`` are imported on first use, so the numpy functions
do not pay for importing TensorFlow.
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
    "auc_borji",
    "auc_judd",
    "auc_shuffled",
    "cc",
    "emd",
    "information_gain",
    "kld",
    "nss",
    "sim",
    *_KERAS_METRICS,
]
