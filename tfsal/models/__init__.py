"""Deep saliency models, built by name: ``tfsal.models.get("unisal")``."""

# Model families register themselves on import; a new family adds its name here.
from tfsal.conventions import SALIENCY
from tfsal.models import cmrnet, msinet, unisal  # noqa: F401
from tfsal.models.features import FeatureInfo, build_tapped_model, select_taps
from tfsal.models.registry import (
    ModelInfo,
    check_input_size,
    get,
    get_builder,
    list_models,
    model_info,
    register_model,
    unregister_model,
)

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
    "unregister_model",
]
