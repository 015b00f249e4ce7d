import numpy as np
import pytest
import scipy.ndimage
import skimage.color

from tfsal import data
from tfsal.data import popout

SIZE = 128


def components(mask):
    labels, count = scipy.ndimage.label(mask)
    return labels, count


def colour_at(stimulus, mask):
    labels, _ = components(mask)
    row, col = np.round(scipy.ndimage.center_of_mass(mask, labels, 1)).astype(int)
    return stimulus.image[row, col]


def test_generation_is_deterministic_per_seed_and_index():
    first = popout.generate_stimulus(3, 7, image_size=SIZE)
    again = popout.generate_stimulus(3, 7, image_size=SIZE)
    other = popout.generate_stimulus(4, 7, image_size=SIZE)
    np.testing.assert_array_equal(first.image, again.image)
    np.testing.assert_array_equal(first.target_mask, again.target_mask)
    assert not np.array_equal(first.image, other.image)


@pytest.mark.parametrize("index", range(6))
def test_grid_of_one_target_and_48_distractors(index):
    stimulus = popout.generate_stimulus(0, index, image_size=SIZE)
    assert stimulus.image.shape == (SIZE, SIZE, 3) and stimulus.image.dtype == np.uint8
    assert stimulus.family == popout.FAMILIES[index % 3]
    assert components(stimulus.target_mask)[1] == 1
    assert components(stimulus.distractor_mask)[1] == 48
    assert not (stimulus.target_mask & stimulus.distractor_mask).any()
    pitch = SIZE / popout.GRID
    nominal = (np.array(stimulus.target_cell) + 0.5) * pitch
    assert np.all(np.abs(np.array(stimulus.target_centre) - nominal) <= popout.JITTER * pitch)
    centre = np.array(scipy.ndimage.center_of_mass(stimulus.target_mask))
    assert np.all(np.abs(centre - stimulus.target_centre) < 1.0)
    corner = stimulus.image[0, 0]
    np.testing.assert_array_equal(corner, [popout.BACKGROUND] * 3)


@pytest.mark.parametrize("index", [0, 3, 6, 9])
def test_colour_singletons_are_isoluminant_with_the_requested_hue_difference(index):
    stimulus = popout.generate_stimulus(1, index, image_size=SIZE, family="colour")
    target = skimage.color.rgb2lab(colour_at(stimulus, stimulus.target_mask)[None, None])[0, 0]
    distractor_mask = stimulus.distractor_mask
    distractor = skimage.color.rgb2lab(colour_at(stimulus, distractor_mask)[None, None])[0, 0]
    assert abs(target[0] - popout.LIGHTNESS) < 1.0
    assert abs(distractor[0] - popout.LIGHTNESS) < 1.0
    hue = np.degrees(np.arctan2(target[2], target[1]) - np.arctan2(distractor[2], distractor[1]))
    difference = abs((hue + 180) % 360 - 180)
    requested = stimulus.difference if stimulus.difference <= 180 else 360 - stimulus.difference
    assert difference == pytest.approx(requested, abs=3.0)


def orientation_of(mask):
    rows, cols = np.nonzero(mask)
    covariance = np.cov(np.stack([cols, rows]))
    return np.degrees(0.5 * np.arctan2(2 * covariance[0, 1], covariance[0, 0] - covariance[1, 1]))


def test_orientation_singleton_differs_by_the_requested_angle():
    stimulus = popout.generate_stimulus(2, 1, image_size=256, family="orientation")
    labels, _ = components(stimulus.distractor_mask)
    target_angle = orientation_of(stimulus.target_mask)
    distractor_angle = orientation_of(labels == 1)
    difference = abs((target_angle - distractor_angle + 90) % 180 - 90)
    assert difference == pytest.approx(stimulus.difference, abs=4.0)


def test_size_singleton_has_the_requested_size_ratio():
    stimulus = popout.generate_stimulus(2, 2, image_size=256, family="size")
    ratio = np.sqrt(stimulus.target_mask.sum() / (stimulus.distractor_mask.sum() / 48))
    assert ratio == pytest.approx(stimulus.difference, rel=0.1)
    assert stimulus.target_size / stimulus.distractor_size == pytest.approx(stimulus.difference)


def test_isoluminant_colours_fit_the_gamut():
    rng = np.random.default_rng(0)
    for difference in popout.HUE_DIFFERENCES:
        colours = popout.isoluminant_colours(rng, difference)
        lightness = skimage.color.rgb2lab(colours[None])[0, :, 0]
        np.testing.assert_allclose(lightness, popout.LIGHTNESS, atol=1.0)


def test_open_dataset_popout_gives_records_with_fixations_on_the_target():
    dataset = data.open_dataset("popout", num_images=6, image_size=SIZE, num_fixations=5)
    assert isinstance(dataset, popout.PopoutDataset)
    assert dataset.ids() == [f"popout-{i:04d}" for i in range(6)]
    assert len(dataset) == 6 and dataset.has_fixations and dataset.has_density
    record = dataset.load("popout-0004")
    stimulus = dataset.stimulus("popout-0004")
    np.testing.assert_array_equal(record.image, stimulus.image)
    assert record.fixations.shape == (5, 2)
    rows, cols = record.fixations.astype(int).T
    assert stimulus.target_mask[rows, cols].all()
    assert record.density.sum() == pytest.approx(1.0, abs=1e-5)
    assert record.density[stimulus.target_mask].sum() > 0.3
    again = data.open_dataset("popout", num_images=6, image_size=SIZE, num_fixations=5)
    np.testing.assert_array_equal(again.load("popout-0004").fixations, record.fixations)


def test_a_caching_dataset_generates_each_array_once_and_hands_out_copies(monkeypatch):
    plain = data.open_dataset("popout", num_images=4, image_size=64)
    cached = data.open_dataset("popout", num_images=4, image_size=64, cache=True)
    generated = []
    original = popout.generate_stimulus
    monkeypatch.setattr(
        popout, "generate_stimulus", lambda *a, **k: generated.append(a) or original(*a, **k)
    )
    first = cached.load("popout-0002")
    first.image[:] = 0  # a caller scribbling on its record
    first.density[:] = 0
    cached.stimulus("popout-0002").target_mask[:] = False
    again, stimulus = cached.load("popout-0002"), cached.stimulus("popout-0002")
    assert len(generated) == 1
    expected = plain.load("popout-0002")
    np.testing.assert_array_equal(again.image, expected.image)
    np.testing.assert_array_equal(again.fixations, expected.fixations)
    np.testing.assert_array_equal(again.density, expected.density)
    np.testing.assert_array_equal(stimulus.target_mask, plain.stimulus("popout-0002").target_mask)
    assert stimulus.target_mask.any()
    plain.load("popout-0002")
    plain.load("popout-0002")
    assert len(generated) == 5  # without the cache every read generates again


def test_default_popout_dataset_is_the_small_offline_default():
    dataset = data.open_dataset("popout")
    assert len(dataset) == 300
    assert dataset.load(dataset.ids()[-1]).image.shape == (256, 256, 3)


def test_popout_dataset_rejects_bad_arguments():
    with pytest.raises(ValueError, match="num_images must be >= 1"):
        popout.PopoutDataset(num_images=0)
    with pytest.raises(ValueError, match="image_size must be >= 28"):
        popout.PopoutDataset(image_size=10)
    with pytest.raises(ValueError, match="family must be one of"):
        popout.generate_stimulus(0, 0, family="motion")
    with pytest.raises(KeyError, match="popout-0009"):
        popout.PopoutDataset(num_images=3).load("popout-0009")


def masks():
    target = np.zeros((10, 10), bool)
    target[1:3, 1:3] = True
    distractors = np.zeros((10, 10), bool)
    distractors[6:8, 6:8] = True
    return target, distractors


def test_gsi_and_msr_on_hand_made_maps():
    target, distractors = masks()
    assert popout.gsi(target * 1.0, target, distractors) == 1.0
    assert popout.gsi(distractors * 1.0, target, distractors) == -1.0
    assert popout.gsi(np.ones((10, 10)), target, distractors) == 0.0
    assert popout.gsi(np.zeros((10, 10)), target, distractors) == -1.0
    saliency = np.zeros((10, 10))
    saliency[1, 1], saliency[6, 6], saliency[4, 4] = 0.8, 0.4, 0.2
    assert popout.gsi(saliency, target, distractors) == pytest.approx((0.2 - 0.1) / (0.2 + 0.1))
    assert popout.msr_target(saliency, target, distractors) == pytest.approx(2.0)
    assert popout.msr_background(saliency, target, distractors) == pytest.approx(0.25)
    assert popout.msr_target(target * 1.0, target, distractors) == -1.0
    assert popout.msr_background(distractors * 1.0, target, distractors) == -1.0
    # Dilating the target mask by a disk of radius 2 reaches the new peak at (3, 3).
    saliency[3, 3] = 0.9
    assert popout.msr_target(saliency, target, distractors) == pytest.approx(2.0)
    assert popout.msr_target(saliency, target, distractors, dilation=2) == pytest.approx(2.25)


@pytest.mark.parametrize("metric", [popout.gsi, popout.msr_target, popout.msr_background])
def test_pop_out_ratios_refuse_negative_maps(metric):
    target, distractors = masks()
    # A log-density: the target is the most salient item, but every value is negative.
    log_density = np.full((10, 10), -9.0)
    log_density[target], log_density[distractors] = -1.0, -4.0
    with pytest.raises(ValueError, match="must be non-negative"):
        metric(log_density, target, distractors)
    assert metric(np.exp(log_density), target, distractors) != -1.0


def test_fixations_to_find_follows_winner_take_all_with_inhibition():
    saliency = np.zeros((20, 20))
    saliency[2, 2], saliency[2, 10], saliency[15, 15] = 250, 240, 200
    region = popout.target_region((20, 20), (15.0, 15.0), 3)
    assert region.sum() == 5  # radius int(3 / 2) = 1
    assert popout.fixations_to_find(saliency, region, 4) == (3, True)
    assert popout.fixations_to_find(saliency, region, (4, 20)) == (2, True)
    assert popout.fixations_to_find(saliency, region, 4, max_fixations=2) == (2, False)
    never = np.zeros((20, 20), bool)
    never[19, 19] = True
    assert popout.fixations_to_find(np.zeros((20, 20)), never, 4) == (100, False)
    graded = popout.fixations_to_find(saliency, region, 4, gaussian=True)
    assert graded[1]
    assert popout.fixations_to_find(saliency, region, 4, jitter=True, seed=1) == (3, True)
    with pytest.raises(ValueError, match="max_fixations must be >= 1"):
        popout.fixations_to_find(saliency, region, 4, max_fixations=0)
    with pytest.raises(ValueError, match="same shape"):
        popout.fixations_to_find(saliency, region[:5], 4)


def test_lab_conversions_match_scikit_image():
    rng = np.random.default_rng(0)
    rgb = rng.random((500, 3))
    np.testing.assert_allclose(
        popout.rgb_to_lab(rgb), skimage.color.rgb2lab(rgb[None])[0], rtol=0, atol=1e-10
    )
    lab = np.stack(
        [rng.uniform(0, 100, 500), rng.uniform(-120, 120, 500), rng.uniform(-120, 120, 500)], 1
    )
    with pytest.warns(UserWarning):  # scikit-image warns about the clipped colours
        expected = skimage.color.lab2rgb(lab[None])[0]
    np.testing.assert_allclose(popout.lab_to_rgb(lab), expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("dilation", [1, 2, 5])
def test_mask_dilation_matches_a_scikit_image_disk(dilation):
    import skimage.morphology

    from tfsal.metrics.popout import _popout_inputs

    rng = np.random.default_rng(dilation)
    saliency = rng.random((40, 37))
    target, distractors = rng.random((2, 40, 37)) > 0.97
    _, dilated_target, dilated_distractors = _popout_inputs(
        saliency, target, distractors, dilation, "test"
    )
    disk = skimage.morphology.disk(dilation)
    np.testing.assert_array_equal(dilated_target, skimage.morphology.dilation(target, disk))
    np.testing.assert_array_equal(
        dilated_distractors, skimage.morphology.dilation(distractors, disk)
    )


def test_colours_are_recorded_for_target_and_distractors():
    for family in popout.FAMILIES:
        stimulus = popout.generate_stimulus(5, 0, image_size=SIZE, family=family)
        assert tuple(colour_at(stimulus, stimulus.target_mask)) == stimulus.target_colour
        distractor = colour_at(stimulus, stimulus.distractor_mask)
        assert tuple(distractor) == stimulus.distractor_colour
        if family != "colour":
            assert stimulus.target_colour == stimulus.distractor_colour


@pytest.mark.parametrize("index", [1, 4, 7])
def test_bar_angles_are_recorded_anticlockwise_with_rows_down(index):
    stimulus = popout.generate_stimulus(2, index, image_size=256, family="orientation")
    labels, _ = components(stimulus.distractor_mask)
    # orientation_of measures clockwise on screen (rows down): the bank counts the other way.
    measured_target = -orientation_of(stimulus.target_mask) % 180
    measured_distractor = -orientation_of(labels == 1) % 180
    for measured, recorded in (
        (measured_target, stimulus.target_angle),
        (measured_distractor, stimulus.distractor_angle),
    ):
        assert 0 <= recorded < 180
        assert abs((measured - recorded + 90) % 180 - 90) < 4.0
    difference = abs((stimulus.target_angle - stimulus.distractor_angle + 90) % 180 - 90)
    assert difference == pytest.approx(stimulus.difference)
    disc = popout.generate_stimulus(2, index, image_size=SIZE, family="size")
    assert disc.target_angle is None and disc.distractor_angle is None


def test_item_mask_picks_one_item_by_its_grid_cell():
    stimulus = popout.generate_stimulus(0, 3, image_size=SIZE)
    np.testing.assert_array_equal(stimulus.item_mask(stimulus.target_cell), stimulus.target_mask)
    other = ((stimulus.target_cell[0] + 1) % popout.GRID, stimulus.target_cell[1])
    item = stimulus.item_mask(other)
    assert components(item)[1] == 1 and not (item & ~stimulus.distractor_mask).any()
    centre = np.array(scipy.ndimage.center_of_mass(item))
    assert np.all(np.abs(centre - stimulus.item_centres[other]) < 1.0)
    with pytest.raises(ValueError, match="Received: cell=\\(7, 0\\)"):
        stimulus.item_mask((7, 0))
