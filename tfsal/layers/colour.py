"""Colour transforms applied before the log-Gabor bank.

All transforms take RGB in [0, 1] with channels last and return float32.

* ``"yuv"``: analogue YUV of ITU-R BT.601 (Y = 0.299 R + 0.587 G + 0.114 B,
  U = 0.492 (B - Y), V = 0.877 (R - Y)); the matrix below is the one printed in
  BT.601-derived references (e.g. Jack, "Video Demystified", 5th ed., ch. 3) and matches
  OpenCV's ``COLOR_RGB2YUV`` up to OpenCV's +0.5 offset on U and V.
* ``"opponent"``: the opponent colour space of van de Sande, Gevers and Snoek,
  "Evaluating Color Descriptors for Object and Scene Recognition", TPAMI 32(9), 2010:
  O1 = (R - G) / sqrt 2, O2 = (R + G - 2 B) / sqrt 6, O3 = (R + G + B) / sqrt 3.
* ``"lab"``: CIE L*a*b* of sRGB under D65, with OpenCV's constants (sRGB linearisation,
  the Rec. 709 RGB-to-XYZ matrix, white point (0.950456, 1, 1.088754)), divided by 100
  so that L lies in [0, 1] like the other spaces. It agrees with scikit-image's exact
  ``rgb2lab`` to 0.005 Lab units; OpenCV 5's float path is table-based and within 0.3.
* ``"rgb"``: the input unchanged.
* ``"gray"``: BT.601 luma; a one-channel input is taken as already grey.
"""

import math

import numpy as np
import tensorflow as tf

COLOUR_CHANNELS = {
    "yuv": ("Y", "U", "V"),
    "opponent": ("O1", "O2", "O3"),
    "lab": ("L", "a", "b"),
    "rgb": ("R", "G", "B"),
    "gray": ("gray",),
}

RGB_TO_YUV = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.14713, -0.28886, 0.436],
        [0.615, -0.51499, -0.10001],
    ]
)

RGB_TO_OPPONENT = np.array(
    [
        [1.0 / math.sqrt(2.0), -1.0 / math.sqrt(2.0), 0.0],
        [1.0 / math.sqrt(6.0), 1.0 / math.sqrt(6.0), -2.0 / math.sqrt(6.0)],
        [1.0 / math.sqrt(3.0), 1.0 / math.sqrt(3.0), 1.0 / math.sqrt(3.0)],
    ]
)

# Linear sRGB (Rec. 709 primaries, D65) to CIE XYZ, as OpenCV uses it.
LINEAR_RGB_TO_XYZ = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)
D65_WHITE = np.array([0.950456, 1.0, 1.088754])
LUMA_WEIGHTS = RGB_TO_YUV[0]

_LAB_EPSILON = 0.008856  # (6/29)^3, where the cube root meets its linear segment
_LAB_KAPPA = 903.3


def colour_channel_names(colour_space: str) -> tuple[str, ...]:
    """Names of the channels a colour space produces.

    Raises:
        ValueError: for an unknown colour space.
    """
    if colour_space not in COLOUR_CHANNELS:
        raise ValueError(
            f"colour_space must be one of {sorted(COLOUR_CHANNELS)}. "
            f"Received: colour_space={colour_space!r}"
        )
    return COLOUR_CHANNELS[colour_space]


def accepted_input_channels(colour_space: str) -> tuple[int, ...]:
    """Channel counts an input may have for ``colour_space``."""
    colour_channel_names(colour_space)
    return (3, 1) if colour_space == "gray" else (3,)


def _apply_matrix(rgb: tf.Tensor, matrix: np.ndarray) -> tf.Tensor:
    return tf.tensordot(rgb, tf.constant(matrix.T, rgb.dtype), axes=[[-1], [0]])


def _srgb_to_linear(rgb: tf.Tensor) -> tf.Tensor:
    return tf.where(
        rgb <= 0.04045,
        rgb / 12.92,
        tf.pow((tf.maximum(rgb, 0.04045) + 0.055) / 1.055, 2.4),
    )


def _lab_companding(t: tf.Tensor) -> tf.Tensor:
    cube_root = tf.pow(tf.maximum(t, _LAB_EPSILON), 1.0 / 3.0)
    return tf.where(t > _LAB_EPSILON, cube_root, 7.787 * t + 16.0 / 116.0)


def rgb_to_lab(rgb: tf.Tensor) -> tf.Tensor:
    """CIE L*a*b* (L in [0, 100]) of sRGB in [0, 1], channels last."""
    xyz = _apply_matrix(_srgb_to_linear(rgb), LINEAR_RGB_TO_XYZ)
    xyz = xyz / tf.constant(D65_WHITE, rgb.dtype)
    fx, fy, fz = tf.unstack(_lab_companding(xyz), axis=-1)
    y = xyz[..., 1]
    lightness = tf.where(y > _LAB_EPSILON, 116.0 * fy - 16.0, _LAB_KAPPA * y)
    return tf.stack([lightness, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


def convert_colour(rgb: tf.Tensor, colour_space: str) -> tf.Tensor:
    """Converts RGB in [0, 1] (channels last) to ``colour_space``.

    Args:
        rgb: float tensor (..., 3), or (..., 1) for ``"gray"``.
        colour_space: one of "yuv", "opponent", "lab", "rgb", "gray".

    Returns:
        A float32 tensor with ``len(colour_channel_names(colour_space))`` channels.
    """
    colour_channel_names(colour_space)
    rgb = tf.cast(rgb, tf.float32)
    if colour_space == "rgb":
        return rgb
    if colour_space == "gray":
        if rgb.shape[-1] == 1:
            return rgb
        return _apply_matrix(rgb, LUMA_WEIGHTS[None, :])
    if colour_space == "yuv":
        return _apply_matrix(rgb, RGB_TO_YUV)
    if colour_space == "opponent":
        return _apply_matrix(rgb, RGB_TO_OPPONENT)
    return rgb_to_lab(rgb) / 100.0
