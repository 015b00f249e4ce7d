"""Keras layers: the explainable model's and those shared by the saliency model families.

The explainable model uses the log-Gabor bank and the linear reconstruction; the
saliency models share the bilinear upsampling, the edge padding and the spatial
log-softmax.
"""

from tfsal.layers.bilinear_upsampling import BilinearUpsampling2D
from tfsal.layers.colour import colour_channel_names, convert_colour
from tfsal.layers.edge_padding import EdgePadding2D
from tfsal.layers.log_gabor import LogGaborBank
from tfsal.layers.reconstruction import LinearReconstruction
from tfsal.layers.spatial_log_softmax import SpatialLogSoftmax

__all__ = [
    "BilinearUpsampling2D",
    "EdgePadding2D",
    "LinearReconstruction",
    "LogGaborBank",
    "SpatialLogSoftmax",
    "colour_channel_names",
    "convert_colour",
]
