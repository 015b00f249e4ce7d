"""tfsal.explain.region_contributions: what raises a region, by colour and orientation."""

import numpy as np
import pytest

from tfsal.data import popout
from tfsal.explain import region_contributions as regions
from tfsal.layers import LogGaborBank

NAMES = ["Y/scale0/orientation0", "U/scale0/orientation1", "V/lowpass", "prior"]


def test_elevation_is_the_region_mean_above_the_image_mean():
    contributions = np.zeros((4, 4, 4))
    contributions[..., 3] = 7.0  # a constant changes no region
    contributions[:2, :2, 1] = 4.0  # U raises the top-left quarter
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True
    np.testing.assert_allclose(regions.region_elevation(contributions, mask), [0, 3, 0, 0])
    # Half coverage of the region's pixels weighs them half: the same mean here.
    np.testing.assert_allclose(regions.region_elevation(contributions, mask * 0.5), [0, 3, 0, 0])
    background = ~mask
    np.testing.assert_allclose(regions.region_elevation(contributions, background), [0, -1, 0, 0])
    with pytest.raises(ValueError, match="non-empty"):
        regions.region_elevation(contributions, np.zeros((4, 4)))
    with pytest.raises(ValueError, match="size \\(4, 4\\)"):
        regions.region_elevation(contributions, np.ones((3, 4)))


def test_shares_split_the_positive_elevation_by_colour_and_orientation():
    shares = regions.elevation_shares(np.array([1.0, 3.0, 2.0, -2.0]), NAMES)
    assert shares["elevation"] == pytest.approx(4.0)  # negative groups count in the total
    assert shares["colour"] == pytest.approx({"luminance": 1 / 6, "chroma": 5 / 6, "prior": 0.0})
    assert shares["band_pass"] == pytest.approx(4 / 6)  # V/lowpass has no orientation
    assert shares["orientation"] == pytest.approx({0: 0.25, 1: 0.75})
    nothing = regions.elevation_shares(np.array([-1.0, 0.0, -1.0, 0.0]), NAMES)
    assert nothing["colour"] == {"luminance": 0.0, "chroma": 0.0, "prior": 0.0}
    with pytest.raises(ValueError, match="neither luminance nor chroma"):
        regions.elevation_shares(np.ones(2), ["R/lowpass", "prior"])
    with pytest.raises(ValueError, match="One elevation per group"):
        regions.elevation_shares(np.ones(3), NAMES)


def test_bar_orientation_follows_the_bank_convention():
    # Orientation 0 responds to vertical bars, orientation n/2 to horizontal ones.
    assert regions.bar_orientation(90.0, 6) == 0
    assert regions.bar_orientation(0.0, 6) == 3
    assert regions.bar_orientation(179.0, 6) == 3
    assert regions.bar_orientation(44.0, 4) == 3  # frequency at 134° is nearest 135°
    with pytest.raises(ValueError, match="num_orientations must be >= 1"):
        regions.bar_orientation(0.0, 0)


@pytest.mark.parametrize("index", [1, 4])
def test_a_generated_bar_excites_the_orientation_it_maps_to(index):
    stimulus = popout.generate_stimulus(0, index, image_size=128, family="orientation")
    bank = LogGaborBank(num_scales=2, num_orientations=6, min_wavelength=4, colour_space="gray")
    magnitudes = np.asarray(bank(stimulus.image[None].astype("float32")))[0]
    energy = magnitudes[stimulus.target_mask].reshape(-1, 2, 6).sum(axis=(0, 1))
    assert int(np.argmax(energy)) == regions.bar_orientation(stimulus.target_angle, 6)
