"""UNISAL (Droste, Jiao, Noble, ECCV 2020), image mode: registered as ``"unisal"``."""

from tfsal.models.unisal.encoder import encoder_layers, imagenet_normalization
from tfsal.models.unisal.input_size import unisal_input_size
from tfsal.models.unisal.layers import GaussianPriorMaps
from tfsal.models.unisal.model import FEATURE_INFO, unisal

__all__ = [
    "FEATURE_INFO",
    "GaussianPriorMaps",
    "encoder_layers",
    "imagenet_normalization",
    "unisal",
    "unisal_input_size",
]
