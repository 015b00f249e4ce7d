import numpy as np
import pytest

from tfsal.data.record import SaliencyRecord, check_map_size, clean_fixations


def _image(height=4, width=5):
    return np.zeros((height, width, 3), np.uint8)


def test_record_normalises_density_and_keeps_fixations():
    density = np.ones((4, 5), np.float32) * 3
    record = SaliencyRecord("a", _image(), [[0, 0], [3, 4]], observers=[0, 1], density=density)
    assert record.fixations.dtype == np.float64 and record.fixations.shape == (2, 2)
    assert record.observers.dtype == np.int32
    np.testing.assert_allclose(record.density.sum(), 1.0, rtol=1e-6)
    assert record.shape == (4, 5) and record.has_fixations


def test_record_allows_no_fixations():
    record = SaliencyRecord("a", _image(), np.zeros((0, 2)))
    assert record.fixations.shape == (0, 2) and not record.has_fixations


@pytest.mark.parametrize(
    "fixations", [[[np.nan, 1.0]], [[4.0, 0.0]], [[0.0, -0.5]], [[0.0, np.inf]]]
)
def test_record_rejects_nan_and_out_of_range_fixations(fixations):
    with pytest.raises(ValueError, match="record 'a'.*outside the 4x5 image"):
        SaliencyRecord("a", _image(), fixations)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"image": np.zeros((4, 5), np.uint8)}, "uint8 RGB"),
        ({"image": np.zeros((4, 5, 3), np.float32)}, "uint8 RGB"),
        ({"observers": [0, 1]}, "one entry per fixation"),
        ({"observers": [0.5]}, "observer ids are not whole numbers"),
        ({"observers": [1e12]}, "observer ids are not whole numbers"),
        ({"observers": [np.nan]}, "observer ids are not whole numbers"),
        ({"observers": ["a"]}, "observers must be whole numbers"),
        ({"density": np.ones((5, 4))}, "density must have the image's shape"),
        ({"density": np.zeros((4, 5))}, "not all zero"),
        ({"density": -np.ones((4, 5))}, "non-negative"),
    ],
)
def test_record_rejects_inconsistent_fields(kwargs, message):
    fields = {"image_id": "a", "image": _image(), "fixations": [[1, 1]]} | kwargs
    with pytest.raises(ValueError, match=message):
        SaliencyRecord(**fields)


def test_clean_fixations_clamps_border_and_errors_beyond():
    fixations, observers = clean_fixations(
        [[-0.9, 2.0], [3.5, 4.9]], (4, 5), np.array([1, 2]), "error", "x"
    )
    np.testing.assert_array_equal(fixations, [[0.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(observers, [1, 2])
    with pytest.raises(ValueError, match="x: 1 of 2 fixations"):
        clean_fixations([[1, 1], [1, 7]], (4, 5), None, "error", "x")


def test_clean_fixations_drops_with_logged_count(caplog):
    fixations, observers = clean_fixations(
        [[1, 1], [np.nan, 1], [10, 1]], (4, 5), np.array([0, 1, 2]), "drop", "img"
    )
    np.testing.assert_array_equal(fixations, [[1, 1]])
    np.testing.assert_array_equal(observers, [0])
    assert "img: dropped 2 of 3 fixations" in caplog.text


def test_clean_fixations_rejects_unknown_policy():
    with pytest.raises(ValueError, match="invalid_fixations must be one of"):
        clean_fixations([[1, 1]], (4, 5), None, "ignore", "x")


def test_check_map_size_names_both_files_and_sizes():
    image = np.zeros((4, 6, 3), np.uint8)
    check_map_size(np.zeros((4, 6)), "map.png", image, "image.jpg", "X")
    with pytest.raises(ValueError, match="X: map.png is 4x5 but its image image.jpg is 4x6"):
        check_map_size(np.zeros((4, 5)), "map.png", image, "image.jpg", "X")
    with pytest.raises(ValueError, match="X: fix.mat is 24 but its image"):
        check_map_size(np.zeros(24), "fix.mat", image, "image.jpg", "X")
