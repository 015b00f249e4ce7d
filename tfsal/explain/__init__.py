"""Explainable saliency models derived from deep ones (DESIGN.md §1-3).

``derive(parent, train_batches, val_batches)`` builds the explainable counterpart of
a deep saliency model: a fixed log-Gabor bank, one learned linear reconstruction per
tap, and a readout; it returns the model and its fidelity to the parent.
"""

from tfsal.explain.centre_prior import CentrePrior
from tfsal.explain.contributions import PRIOR_GROUP, FeatureContributions
from tfsal.explain.derive import Derivation, check_parent, derive
from tfsal.explain.explainable_model import (
    READOUTS,
    build_explainable_model,
    group_names,
    reconstruction_layers,
    tap_readouts,
)
from tfsal.explain.image_normalisation import ImageNormalisation
from tfsal.explain.ridge import RidgeAccumulator, RidgeScore, fit_ridge
from tfsal.explain.tap_readout import TapReadout
from tfsal.explain.taps import Tap, default_taps

__all__ = [
    "PRIOR_GROUP",
    "READOUTS",
    "CentrePrior",
    "Derivation",
    "FeatureContributions",
    "ImageNormalisation",
    "RidgeAccumulator",
    "RidgeScore",
    "Tap",
    "TapReadout",
    "build_explainable_model",
    "check_parent",
    "default_taps",
    "derive",
    "fit_ridge",
    "group_names",
    "reconstruction_layers",
    "tap_readouts",
]
