"""Deletion and insertion curves (RISE) and their areas."""

import numpy as np
import pytest

from serving import faithfulness
from serving.region import Region
from serving.region_score import SCORE_INDEX, score_model
from tests.serving import explained_models

HEIGHT, WIDTH = explained_models.SIZE


@pytest.fixture(scope="module")
def setup():
    model = explained_models.deep_model()
    score, layer = score_model(model, "log_density")
    layer.set_region(Region(4, 6, 8, 10).mask((HEIGHT, WIDTH)))
    image = explained_models.random_image(HEIGHT, WIDTH).astype(np.float32)
    return lambda batch: np.asarray(score(batch))[:, SCORE_INDEX], image


def test_deleting_the_whole_image_brings_the_mass_to_the_substrates(setup):
    score, image = setup
    attribution = np.random.default_rng(0).random((HEIGHT, WIDTH))
    curve = faithfulness.perturbation_curve(score, image, attribution, "deletion", steps=10)
    assert curve.shape == (11,)
    np.testing.assert_allclose(curve[0], score(image[None])[0], rtol=1e-5)
    np.testing.assert_allclose(curve[-1], score(np.zeros_like(image)[None])[0], rtol=1e-5)
    assert abs(curve[-1] - curve[0]) > 1e-4  # the substrate does change the score


def test_insertion_goes_from_the_blurred_image_to_the_image(setup):
    score, image = setup
    attribution = np.random.default_rng(1).random((HEIGHT, WIDTH))
    curve = faithfulness.perturbation_curve(
        score, image, attribution, "insertion", pixels_per_step=100, batch_size=3
    )
    assert curve.shape == (int(np.ceil(HEIGHT * WIDTH / 100)) + 1,)
    np.testing.assert_allclose(curve[0], score(faithfulness.blurred(image)[None])[0], rtol=1e-5)
    np.testing.assert_allclose(curve[-1], score(image[None])[0], rtol=1e-5)


def test_batching_does_not_change_the_curve(setup):
    score, image = setup
    attribution = np.random.default_rng(2).random((HEIGHT, WIDTH))
    one = faithfulness.perturbation_curve(
        score, image, attribution, "deletion", steps=7, batch_size=1
    )
    many = faithfulness.perturbation_curve(
        score, image, attribution, "deletion", steps=7, batch_size=5
    )
    np.testing.assert_allclose(one, many, rtol=1e-5)


def test_pixels_are_changed_in_attribution_order_within_the_valid_mask():
    image = np.full((2, 3, 3), 10.0, np.float32)
    attribution = np.array([[0.1, 0.9, 0.5], [0.3, 0.2, 0.8]])
    valid = np.array([[True, True, True], [False, True, True]])
    seen = []
    faithfulness.perturbation_curve(
        lambda batch: [seen.append(b[..., 0].copy()) or 0.0 for b in batch],
        image,
        attribution,
        "deletion",
        valid=valid,
        pixels_per_step=2,
        batch_size=10,
    )
    # Step 1 deletes the two largest valid pixels (0.9 and 0.8), step 2 the next two
    # (0.5 and 0.2), step 3 the last (0.1); the masked-out pixel (0.3) stays.
    assert [int((s == 0).sum()) for s in seen] == [0, 2, 4, 5]
    assert seen[1][0, 1] == 0 and seen[1][1, 2] == 0 and seen[-1][1, 0] == 10


def test_area_under_curve_is_the_trapezoid_rule_on_unit_interval():
    assert faithfulness.area_under_curve([1.0, 0.0]) == pytest.approx(0.5)
    assert faithfulness.area_under_curve([1.0, 0.5, 0.0, 0.0]) == pytest.approx(0.75 / 3 + 0.25 / 3)
    with pytest.raises(ValueError, match="at least 2 points"):
        faithfulness.area_under_curve([1.0])
