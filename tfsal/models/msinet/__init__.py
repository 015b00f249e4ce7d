"""MSI-Net (Kroner et al., Neural Networks 2020), registered as "msinet"."""

from tfsal.models.msinet.architecture import CAFFE_MEAN_AS_RELEASED, DATASET_INPUT_SIZES
from tfsal.models.msinet.layers import MinMaxNormalization, SpatialBroadcast
from tfsal.models.msinet.model import msinet

__all__ = [
    "CAFFE_MEAN_AS_RELEASED",
    "DATASET_INPUT_SIZES",
    "MinMaxNormalization",
    "SpatialBroadcast",
    "msinet",
]
