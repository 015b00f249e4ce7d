"""Deep saliency models, built by name: ``tfsal.models.get("unisal")``."""

from tfsal.models.features import SALIENCY, FeatureInfo, build_tapped_model, select_taps
from tfsal.models.registry import (
    ModelInfo,
    check_input_size,
    get,
    get_builder,
    list_models,
    model_info,
    register_model,
)

# Model families register themselves on import; add one line per family.

__all__ = [
    "SALIENCY",
    "FeatureInfo",
    "ModelInfo",
    "build_tapped_model",
    "check_input_size",
    "get",
    "get_builder",
    "list_models",
    "model_info",
    "register_model",
    "select_taps",
]
