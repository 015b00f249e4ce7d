"""Keras layers of the explainable model: the log-Gabor bank and the reconstruction."""

from tfsal.layers.colour import colour_channel_names, convert_colour
from tfsal.layers.log_gabor import LogGaborBank
from tfsal.layers.reconstruction import LinearReconstruction
from tfsal.layers.ridge import RidgeAccumulator

__all__ = [
    "LinearReconstruction",
    "LogGaborBank",
    "RidgeAccumulator",
    "colour_channel_names",
    "convert_colour",
]
