import numpy as np
import pytest

from tfsal.data import density, targets


def test_pad_geometry_centres_the_scaled_image():
    geometry = targets.resize_geometry((100, 200), (50, 50), "pad")
    assert (geometry.content_height, geometry.content_width) == (25, 50)
    assert (geometry.top, geometry.left) == (12, 0)
    assert geometry.scale_row == geometry.scale_col == 0.25


def test_stretch_geometry_fills_the_canvas():
    geometry = targets.resize_geometry((100, 200), (50, 50), "stretch")
    assert (geometry.top, geometry.left, geometry.content_height, geometry.content_width) == (
        0,
        0,
        50,
        50,
    )
    assert (geometry.scale_row, geometry.scale_col) == (0.5, 0.25)


def test_fixations_map_pixel_centres_to_pixel_centres():
    geometry = targets.resize_geometry((10, 10), (20, 20), "stretch")
    # Original pixel 0 covers [-0.5, 0.5] -> canvas [-0.5, 1.5], centre 0.5.
    np.testing.assert_allclose(geometry.map_fixations([[0, 0], [9, 9]]), [[0.5, 0.5], [18.5, 18.5]])
    padded = targets.resize_geometry((10, 20), (20, 20), "pad")
    np.testing.assert_allclose(padded.map_fixations([[0, 0]]), [[5, 0]])


def test_example_at_native_size_is_the_record_itself():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
    fixations = np.array([[2.0, 3.0], [11.0, 15.0]])
    model_image, target = targets.make_example(image, fixations, None, (12, 16), "pad")
    np.testing.assert_array_equal(model_image, image.astype(np.float32))
    np.testing.assert_array_equal(target[..., 1], density.fixation_map(fixations, (12, 16)))
    np.testing.assert_allclose(
        target[..., 0], density.density_from_fixations(fixations, (12, 16)), atol=1e-7
    )


def test_pad_example_has_zero_padding_and_normalised_density():
    image = np.full((20, 40, 3), 200, np.uint8)
    model_image, target = targets.make_example(image, [[0, 0], [19, 39]], None, (40, 40), "pad")
    assert model_image.dtype == np.float32 and model_image.shape == (40, 40, 3)
    np.testing.assert_array_equal(model_image[:10], 0)
    np.testing.assert_array_equal(model_image[10:30], 200)
    np.testing.assert_array_equal(model_image[30:], 0)
    np.testing.assert_allclose(target[..., 0].sum(), 1.0, rtol=1e-5)
    assert target[:10, :, 0].max() == 0 and target[30:, :, 0].max() == 0
    assert np.argwhere(target[..., 1]).tolist() == [[10, 0], [29, 39]]


def test_dataset_density_is_resized_and_renormalised():
    image = np.zeros((40, 40, 3), np.uint8)
    given = np.zeros((40, 40), np.float32)
    given[:, :20] = 1.0
    _, target = targets.make_example(image, np.zeros((0, 2)), given, (10, 10), "stretch")
    np.testing.assert_allclose(target[:, :5, 0], 0.02, rtol=1e-5)
    np.testing.assert_array_equal(target[:, 5:, 0], 0)
    assert target[..., 1].sum() == 0  # no fixations: empty fixation map


def test_example_without_any_target_raises_naming_the_image():
    with pytest.raises(ValueError, match="Image 'x' has neither fixations nor a density"):
        targets.make_example(
            np.zeros((4, 4, 3), np.uint8), np.zeros((0, 2)), None, (4, 4), image_id="x"
        )


@pytest.mark.parametrize(
    "image_size, resize, message",
    [
        ((4, 4), "crop", "resize must be one of"),
        ((0, 4), "pad", "positive"),
        ((4,), "pad", "image_size"),
    ],
)
def test_bad_resize_arguments_raise(image_size, resize, message):
    with pytest.raises(ValueError, match=message):
        targets.resize_geometry((8, 8), image_size, resize)


def test_pad_example_places_the_dataset_density_on_the_content_only():
    image = np.zeros((20, 40, 3), np.uint8)
    given = np.zeros((20, 40), np.float32)
    given[:, 20:] = 1.0  # right half of the image
    _, target = targets.make_example(image, [[5.0, 30.0]], given, (40, 40), "pad")
    density_map = target[..., 0]
    np.testing.assert_allclose(density_map.sum(), 1.0, rtol=1e-6)
    assert density_map[:10].max() == 0 and density_map[30:].max() == 0  # padding
    np.testing.assert_array_equal(density_map[10:30, :20], 0)
    np.testing.assert_allclose(density_map[10:30, 20:], 1.0 / (20 * 20), rtol=1e-5)
    # The fixation keeps its place on the content: row 5 -> 10 + 5, col 30 -> 30.
    assert np.argwhere(target[..., 1]).tolist() == [[15, 30]]
