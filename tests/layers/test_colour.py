import math

import numpy as np
import pytest

from tfsal.layers import colour_channel_names, convert_colour

cv2 = pytest.importorskip("cv2")


def _rgb(shape=(1, 7, 9, 3), seed=0):
    return np.random.default_rng(seed).random(shape).astype("float32")


def test_yuv_is_bt601_and_matches_opencv():
    rgb = _rgb()
    yuv = convert_colour(rgb, "yuv").numpy()
    r, g, b = np.moveaxis(rgb.astype("float64"), -1, 0)
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    np.testing.assert_allclose(yuv[..., 0], luma, atol=1e-6)
    np.testing.assert_allclose(yuv[..., 1], 0.492 * (b - luma), atol=1e-3)
    np.testing.assert_allclose(yuv[..., 2], 0.877 * (r - luma), atol=1e-3)
    opencv = cv2.cvtColor(rgb[0], cv2.COLOR_RGB2YUV)
    np.testing.assert_allclose(yuv[0], opencv - np.array([0.0, 0.5, 0.5]), atol=2e-3)


def test_opponent_follows_van_de_sande():
    rgb = _rgb()
    r, g, b = np.moveaxis(rgb.astype("float64"), -1, 0)
    expected = np.stack(
        [(r - g) / math.sqrt(2), (r + g - 2 * b) / math.sqrt(6), (r + g + b) / math.sqrt(3)], -1
    )
    np.testing.assert_allclose(convert_colour(rgb, "opponent"), expected, atol=1e-6)


def test_lab_matches_opencv_and_scikit_image():
    rgb = _rgb((1, 16, 16, 3), seed=1)
    rgb[0, 0, :4] = [[0, 0, 0], [1, 1, 1], [0.01, 0.005, 0.002], [1, 0, 0]]  # both branches
    lab = convert_colour(rgb, "lab").numpy()[0] * 100
    # OpenCV 5 computes float Lab through fixed-point tables (a and b come out in steps
    # of 1/64 to 1/16), hence the loose bound; scikit-image is exact.
    np.testing.assert_allclose(lab, cv2.cvtColor(rgb[0], cv2.COLOR_RGB2Lab), atol=0.35)
    skimage_color = pytest.importorskip("skimage.color")
    np.testing.assert_allclose(lab, skimage_color.rgb2lab(rgb[0].astype("float64")), atol=0.01)
    np.testing.assert_allclose(lab[0, 1], [100, 0, 0], atol=0.01)
    np.testing.assert_allclose(lab[0, 3], [53.24, 80.09, 67.20], atol=0.01)  # sRGB red


def test_gray_and_rgb():
    rgb = _rgb()
    gray = convert_colour(rgb, "gray").numpy()
    assert gray.shape == (1, 7, 9, 1)
    np.testing.assert_allclose(gray[0, ..., 0], cv2.cvtColor(rgb[0], cv2.COLOR_RGB2GRAY), atol=1e-5)
    np.testing.assert_allclose(convert_colour(gray, "gray"), gray)
    np.testing.assert_array_equal(convert_colour(rgb, "rgb"), rgb)


def test_channel_names_and_unknown_space():
    assert colour_channel_names("yuv") == ("Y", "U", "V")
    with pytest.raises(
        ValueError, match="colour_space must be one of .* Received: colour_space='hsv'"
    ):
        convert_colour(_rgb(), "hsv")
