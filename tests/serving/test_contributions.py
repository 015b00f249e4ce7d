"""The log-Gabor explanation of a region: complete, region-specific, consistent."""

import keras
import numpy as np
import pytest

from serving import contributions, explain, faithfulness
from serving.loaded_model import LoadedModel
from serving.region import Region
from serving.region_score import SCORE_INDEX, score_model
from tests.serving import explained_models
from tfsal.layers import SpatialLogSoftmax

NAMES = ["Y/scale0/orientation0", "Y/scale1/orientation1", "U/scale0/orientation1", "prior"]


def _random_contributions(seed=0, shape=(20, 28)):
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.0, (*shape, len(NAMES)))


# A map model's logits: positive along the path (a deep model's map), of both signs (the
# explainable model of a map parent), or all negative (its logits on the toy parent).
SIGNED_MAPS = {
    "positive": lambda m: np.abs(m) + 0.1,
    "signed": lambda m: m,
    "negative": lambda m: m - 3.0,
}


@pytest.mark.parametrize(
    "kind, values",
    [("log_density", "signed"), ("map", "positive"), ("map", "signed"), ("map", "negative")],
)
def test_shares_and_map_add_up_to_the_mass_the_image_adds_to_the_prior(kind, values):
    maps = SIGNED_MAPS[values](_random_contributions())
    mask = Region(3, 5, 8, 9).mask(maps.shape[:2])
    attributed = contributions.region_attribution(maps, mask, NAMES, kind)
    logits = maps.sum(axis=-1)
    assert attributed.mass == pytest.approx(contributions.region_mass(logits, mask, kind))
    assert 0 < attributed.mass < 1 and 0 < attributed.prior_mass < 1
    assert attributed.prior_mass == pytest.approx(
        contributions.region_mass(maps[..., -1], mask, kind)
    )
    image_share = attributed.mass - attributed.prior_mass
    assert abs(image_share) > 1e-3  # the test would not see a missing term otherwise
    assert sum(attributed.shares.values()) == pytest.approx(image_share, abs=1e-6)
    assert float(attributed.pixel_map.sum()) == pytest.approx(image_share, abs=1e-5)
    breakdown = contributions.region_breakdown(attributed)
    assert sum(g["share"] for g in breakdown["groups"]) == pytest.approx(image_share, abs=1e-6)
    for part in ("colour", "scale", "orientation"):
        assert sum(breakdown["marginals"][part].values()) == pytest.approx(image_share, abs=1e-6)
    assert breakdown["marginals"]["colour"]["Y"] == pytest.approx(
        attributed.shares[NAMES[0]] + attributed.shares[NAMES[1]]
    )


@pytest.mark.parametrize("values", ["positive", "signed", "negative"])
def test_region_mass_and_its_gradient_are_region_scores_for_maps_of_any_sign(values):
    import tensorflow as tf

    from serving.region_score import RegionScore

    logits = np.random.default_rng(4).normal(0.0, 1.0, (12, 16))
    logits = SIGNED_MAPS[values](logits)
    mask = Region(2, 3, 5, 6).mask(logits.shape)
    layer = RegionScore("map")
    layer.build((1, 12, 16, 1))
    layer.set_region(mask)
    saliency = tf.Variable(logits[None, ..., None].astype(np.float32))
    with tf.GradientTape() as tape:
        mass = layer(saliency)[0, SCORE_INDEX]
    expected = contributions.region_mass(logits, mask, "map")
    assert 0 < expected < 1 and float(mass) == pytest.approx(expected, rel=1e-5)
    gradient = tape.gradient(mass, saliency).numpy()[0, ..., 0]
    assert (gradient * mask).sum() > 0  # more saliency in the region, more mass there
    np.testing.assert_allclose(
        gradient,
        contributions._mass_gradient(logits, mask, "map"),
        rtol=1e-3,
        atol=1e-6,
    )


def test_a_map_parents_explainable_model_scores_its_most_salient_region_highest():
    # MSI-Net-kind: the explainable model outputs its readout's logits, all negative here.
    from tests.explain.parents import derive_toy, images

    model = derive_toy(output_kind="map", readout_epochs=1, taps=["enc3"]).model
    loaded = LoadedModel("toy_map", model, (32, 32), "map", "pad", {})
    image = images(1, seed=0)[0].astype(np.uint8)
    logits = np.asarray(model(image[None].astype(np.float32))["saliency"])[0, ..., 0]
    assert logits.max() < 0
    explanation = explain.explain_image(loaded, image, ["loggabor"])
    area = explanation.region.mask((32, 32)).mean()
    assert area < explanation.mass < 1  # the plain ratio gave 0.049 for a 0.0625 box
    shifted = logits - logits.min()
    box_share = (shifted * explanation.region.mask((32, 32))).sum() / shifted.sum()
    assert explanation.mass == pytest.approx(box_share, rel=1e-5)
    breakdown = explanation.breakdown
    assert breakdown["mass"] == pytest.approx(explanation.mass, rel=1e-5)
    image_share = breakdown["mass"] - breakdown["prior_mass"]
    assert sum(g["share"] for g in breakdown["groups"]) == pytest.approx(image_share, abs=1e-9)
    score, region_score = score_model(model, "map")
    region_score.set_region(explanation.region.mask((32, 32)))
    assert float(np.asarray(score(image[None].astype(np.float32)))[0, SCORE_INDEX]) == (
        pytest.approx(explanation.mass, rel=1e-5)
    )


def test_one_path_point_is_gradient_times_contribution_at_the_midpoint():
    maps = _random_contributions(1)
    mask = Region(0, 0, 6, 6).mask(maps.shape[:2])
    attributed = contributions.region_attribution(maps, mask, NAMES, path_points=1)
    midpoint = maps[..., -1] + 0.5 * maps[..., :-1].sum(axis=-1)
    density = np.exp(midpoint - midpoint.max())
    density /= density.sum()
    gradient = density * (mask - (density * mask).sum())
    expected = (maps[..., :-1].sum(axis=-1) * gradient).astype(np.float32)
    np.testing.assert_allclose(attributed.pixel_map, expected, rtol=1e-5, atol=1e-9)


def test_two_regions_give_different_maps():
    maps = _random_contributions(2)
    first = contributions.region_attribution(maps, Region(0, 0, 8, 8).mask((20, 28)), NAMES)
    second = contributions.region_attribution(maps, Region(10, 16, 8, 8).mask((20, 28)), NAMES)
    correlation = np.corrcoef(first.pixel_map.ravel(), second.pixel_map.ravel())[0, 1]
    assert correlation < 0.5
    # Raising logits inside the region raises its mass; elsewhere it takes mass away.
    assert first.pixel_map[:8, :8].sum() > 0 > first.pixel_map[10:, 16:].sum()


def _luminance_model(size):
    """An explainable model whose one image group is the image's brightness."""
    image = keras.Input((*size, 3))
    brightness = keras.layers.Conv2D(
        1, 1, kernel_initializer=keras.initializers.Constant(4.0 / 765.0), use_bias=False
    )(image)
    edges = keras.layers.Conv2D(1, 3, padding="same", name="edges")(image)
    prior = keras.ops.zeros_like(brightness)
    groups = keras.layers.Concatenate(name="contributions")([brightness, edges * 0.0, prior])
    logits = keras.ops.sum(groups, axis=-1, keepdims=True)
    saliency = SpatialLogSoftmax(name="log_density")(logits)
    return keras.Model(image, {"saliency": saliency, "contributions": groups})


def test_the_region_around_one_blob_ranks_that_blobs_pixels_first():
    size = (32, 48)
    image = np.full((*size, 3), 20, np.uint8)
    rows, cols = np.mgrid[: size[0], : size[1]]
    blob_a = (rows - 12) ** 2 + (cols - 10) ** 2 <= 16
    blob_b = (rows - 20) ** 2 + (cols - 36) ** 2 <= 16
    image[blob_a | blob_b] = 240
    model = _luminance_model(size)
    model.layers[-1].group_names = ["Y/brightness", "Y/edges", "prior"]
    loaded = LoadedModel("blobs", model, size, "log_density")
    region = Region(6, 4, 12, 12)  # blob A with a margin
    explanation = explain.explain_image(loaded, image, ["loggabor"], region=region)
    ranking = np.argsort(-explanation.maps["loggabor"].ravel())[: int(blob_a.sum())]
    assert blob_a.ravel()[ranking].mean() >= 0.9
    assert not blob_b.ravel()[ranking].any()
    # The image-wide logits rank both blobs alike: the weighting is what tells them apart.
    logits = np.asarray(model(image[None].astype(np.float32))["contributions"])[0, ..., 0]
    ranking = faithfulness.pixel_order(logits, np.ones(size, bool))[: int(blob_a.sum())]
    assert blob_b.ravel()[ranking].mean() > 0.3


def test_the_mass_is_the_score_models_and_the_breakdown_sums_to_it():
    model = explained_models.explainable_model()
    loaded = LoadedModel("tiny", model, explained_models.SIZE, "log_density")
    image = explained_models.random_image(*explained_models.SIZE, seed=3)
    region = Region(4, 6, 8, 10)
    explanation = explain.explain_image(loaded, image, ["loggabor"], region=region)
    score, layer = score_model(model, "log_density")
    layer.set_region(region.mask(explained_models.SIZE))
    scored = float(np.asarray(score(explanation.canvas[None]))[0, SCORE_INDEX])
    breakdown = explanation.breakdown
    assert breakdown["mass"] == pytest.approx(scored, rel=1e-4)
    assert breakdown["prior_mass"] == pytest.approx(80 / np.prod(explained_models.SIZE))
    shares = sum(group["share"] for group in breakdown["groups"])
    assert breakdown["prior_mass"] + shares == pytest.approx(scored, rel=1e-4)


def test_bad_arguments_are_refused_with_what_was_wrong():
    maps = _random_contributions()
    mask = Region(0, 0, 4, 4).mask(maps.shape[:2])
    with pytest.raises(ValueError, match="one map per group name"):
        contributions.region_attribution(maps[..., :2], mask, NAMES)
    with pytest.raises(ValueError, match="non-empty region"):
        contributions.region_attribution(maps, np.zeros(maps.shape[:2]), NAMES)
    with pytest.raises(ValueError, match="must include 'prior'"):
        contributions.region_attribution(maps, mask, [*NAMES[:-1], "bias"])
    with pytest.raises(ValueError, match="path_points must be >= 1"):
        contributions.region_attribution(maps, mask, NAMES, path_points=0)
