"""The attribution adapter: the region's mass as target, every tf-explain method, regions."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from serving import attribution
from serving.loaded_model import load_model
from serving.region import Region, most_salient_region, parse_box
from serving.region_score import SCORE_INDEX, RegionScore, score_model
from tests.serving import explained_models
from tfsal.data.targets import resize_geometry

HEIGHT, WIDTH = explained_models.SIZE
FAST = attribution.AttributionOptions(ig_steps=4, smoothgrad_samples=3, occlusion_patch=8)


@pytest.fixture(scope="module")
def deep():
    return explained_models.deep_model()


@pytest.fixture(scope="module")
def canvas():
    return explained_models.random_image(HEIGHT, WIDTH).astype(np.float32)


REGION = Region(4, 6, 8, 10)


def _score(model, kind="log_density", region=REGION):
    score, layer = score_model(model, kind)
    layer.set_region(region.mask((HEIGHT, WIDTH)))
    return score


def test_target_is_the_saliency_mass_in_the_region_and_has_a_gradient(deep, canvas):
    region = Region(4, 6, 8, 10)
    score = _score(deep, region=region)
    density = np.exp(np.asarray(deep(canvas[None])["saliency"])[0, ..., 0].astype(np.float64))
    expected = density[4:12, 6:16].sum() / density.sum()
    inputs = tf.constant(canvas[None])
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        mass = score(inputs)[:, SCORE_INDEX]
    gradient = tape.gradient(mass, inputs).numpy()
    np.testing.assert_allclose(float(mass[0]), expected, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(score(inputs))[0].sum(), 1.0, rtol=1e-6)
    assert np.isfinite(gradient).all() and np.abs(gradient).max() > 0


def test_map_models_score_the_fraction_of_the_map_in_the_region():
    image = keras.Input((HEIGHT, WIDTH, 1))
    model = keras.Model(image, {"saliency": image})
    saliency = np.random.default_rng(1).random((1, HEIGHT, WIDTH, 1)).astype(np.float32)
    score = _score(model, "map")
    expected = saliency[0, 4:12, 6:16].sum() / saliency.sum()
    np.testing.assert_allclose(float(score(saliency)[0, SCORE_INDEX]), expected, rtol=1e-5)


@pytest.mark.parametrize("method", attribution.METHODS)
def test_each_method_returns_a_finite_map_of_the_input_size(deep, canvas, method):
    result = attribution.attribute(_score(deep), canvas, method, FAST)
    assert result.shape == (HEIGHT, WIDTH) and result.dtype == np.float32
    assert np.isfinite(result).all()
    assert np.abs(result).max() > 0, f"{method} gave an all-zero map"


def test_gradcam_picks_the_last_feature_layer(deep):
    assert attribution.default_gradcam_layer(_score(deep)) == "features"


def test_a_saved_model_is_explained_through_its_serve_endpoint(deep, canvas, tmp_path):
    loaded = load_model(explained_models.export(deep, tmp_path / "tiny" / "1"))
    score = _score(loaded.model)
    np.testing.assert_allclose(
        np.asarray(score(canvas[None])), np.asarray(_score(deep)(canvas[None])), rtol=1e-5
    )
    gradients = attribution.attribute(score, canvas, "gradients", FAST)
    assert np.abs(gradients).max() > 0
    with pytest.raises(ValueError, match="SavedModel hides its layers"):
        attribution.attribute(score, canvas, "gradcam", FAST)


def test_unknown_method_and_bad_options_are_refused(deep, canvas):
    with pytest.raises(ValueError, match="method must be one of"):
        attribution.attribute(_score(deep), canvas, "lime", FAST)
    with pytest.raises(ValueError, match="ig_steps must be >= 2"):
        attribution.AttributionOptions(ig_steps=1)
    with pytest.raises(ValueError, match="output_kind must be one of"):
        RegionScore("probability")


def test_most_salient_region_holds_the_largest_mass():
    saliency = np.zeros((20, 40))
    saliency[10:15, 24:34] = 1.0
    saliency[2, 2] = 3.0  # a brighter single pixel holds less mass than the blob
    geometry = resize_geometry((20, 40), (20, 40))
    region = most_salient_region(saliency, geometry, fraction=0.25)
    assert (region.height, region.width) == (5, 10)
    assert (region.top, region.left) == (10, 24)


def test_region_boxes_map_between_image_and_letterboxed_canvas():
    geometry = resize_geometry((100, 200), (32, 32))  # content 16x32 at row 8
    region = Region.from_image_box((50, 25, 100, 50), geometry)
    assert (region.top, region.left, region.height, region.width) == (12, 8, 8, 16)
    assert region.to_image_box(geometry) == (50, 25, 100, 50)
    with pytest.raises(ValueError, match="inside the 200x100 image"):
        Region.from_image_box((150, 0, 100, 10), geometry)
    with pytest.raises(ValueError, match="four integers"):
        parse_box("1,2,3")
