import numpy as np
import pytest
import scipy.ndimage

from tfsal.data import density


def test_fixation_map_rounds_to_nearest_pixel_and_is_binary():
    result = density.fixation_map([[0.4, 0.6], [0.4, 0.6], [2.0, 3.0]], (3, 4))
    expected = np.zeros((3, 4), np.float32)
    expected[0, 1] = expected[2, 3] = 1
    np.testing.assert_array_equal(result, expected)
    assert result.dtype == np.float32


def test_fixation_counts_count_repeats():
    counts = density.fixation_counts([[1, 1], [1, 1], [0, 0]], (2, 2))
    np.testing.assert_array_equal(counts, [[1, 0], [0, 2]])


@pytest.mark.parametrize(
    "fixations, message",
    [
        ([[np.nan, 0]], "must be finite"),
        ([[3, 0]], r"1 fixations lie outside the 3x4 map \(first: row=3.0, col=0.0\)"),
        ([[0, -1]], r"outside the 3x4 map \(first: row=0.0, col=-1.0\)"),
    ],
)
def test_fixation_map_rejects_bad_coordinates(fixations, message):
    with pytest.raises(ValueError, match=message):
        density.fixation_map(fixations, (3, 4))


def test_density_matches_normalised_gaussian_blur():
    fixations = np.array([[30.0, 40.0], [10.0, 70.0], [30.0, 40.0]])
    shape = (60, 80)
    result = density.density_from_fixations(fixations, shape, sigma=3.0)
    counts = np.zeros(shape)
    counts[30, 40], counts[10, 70] = 2, 1
    reference = scipy.ndimage.gaussian_filter(counts, 3.0, mode="constant", truncate=4.0)
    reference /= reference.sum()
    assert result.dtype == np.float32
    np.testing.assert_allclose(result.sum(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(result, reference, atol=2e-5)


@pytest.mark.parametrize("sigma", [3.0, (2.0, 7.5), 40.0])
def test_sparse_blur_equals_convolution(sigma):
    # A few fixations take the sum-of-Gaussians path; a dense map takes OpenCV's
    # convolution. Both must give the same blur, border mass discarded alike.
    rng = np.random.default_rng(0)
    counts = np.zeros((90, 120), np.float32)
    counts[rng.integers(0, 90, 7), rng.integers(0, 120, 7)] = rng.integers(1, 4, 7)
    counts[0, 0] = 1  # a corner fixation loses most of its mass past the border
    sparse = density.blur_to_density(counts, sigma)
    dense_counts = counts + 1e-3  # every pixel non-zero: the convolution path
    dense = density.blur_to_density(dense_counts, sigma)
    uniform = density.blur_to_density(np.full_like(counts, 1e-3), sigma)
    # Blurring is linear: dense = (a * sparse + b * uniform) / (a + b) for the totals.
    a = _blurred_total(counts, sigma)
    b = _blurred_total(np.full_like(counts, 1e-3), sigma)
    np.testing.assert_allclose(dense, (a * sparse + b * uniform) / (a + b), atol=1e-7)


def _blurred_total(counts, sigma):
    sigma_row, sigma_col = np.broadcast_to(np.asarray(sigma, float), (2,))
    reference = scipy.ndimage.gaussian_filter(
        counts.astype(np.float64), (sigma_row, sigma_col), mode="constant", truncate=4.0
    )
    return reference.sum()


def test_default_sigma_is_three_percent_of_longer_side():
    assert density.default_sigma((480, 640)) == pytest.approx(19.2)
    one_point = density.density_from_fixations([[50, 100]], (101, 201))
    explicit = density.density_from_fixations([[50, 100]], (101, 201), sigma=0.03 * 201)
    np.testing.assert_allclose(one_point, explicit)


def test_anisotropic_sigma_spreads_more_along_columns():
    result = density.density_from_fixations([[20, 20]], (41, 41), sigma=(1.0, 5.0))
    assert result[20, 25] > result[25, 20]


def test_density_needs_fixations_and_positive_sigma():
    with pytest.raises(ValueError, match="at least one fixation"):
        density.density_from_fixations(np.zeros((0, 2)), (4, 4))
    with pytest.raises(ValueError, match="sigma must be > 0"):
        density.density_from_fixations([[1, 1]], (4, 4), sigma=0)
    with pytest.raises(ValueError, match="shape must be"):
        density.fixation_map([[1, 1]], (0, 4))
