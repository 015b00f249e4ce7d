"""serving.predictor: SavedModel folders, run folders and baselines as predictors."""

import shutil

import numpy as np
import pytest

from serving import constants, predictor
from tests.serving.tiny_saved_model import INPUT_SIZE, tiny_log_density_model, write_run_folder
from tfsal import baselines, evaluation
from tfsal.data import open_dataset, targets


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return write_run_folder(tmp_path_factory.mktemp("run"))


def test_saved_model_folder_is_accepted_directly(run_dir):
    models = predictor.resolve_model(str(run_dir / "export" / "tiny" / "2"))
    assert list(models) == ["tiny"]
    image = np.random.default_rng(0).integers(0, 255, (50, 70, 3)).astype(np.uint8)
    saliency = models["tiny"](image)
    assert saliency.shape == (50, 70) and np.isfinite(saliency).all() and saliency.min() >= 0


def test_model_names_are_found_without_loading_a_model(run_dir, monkeypatch):
    def load(path):
        raise AssertionError(f"{path} was loaded")

    monkeypatch.setattr(predictor, "load_saved_model", load)
    assert predictor.model_names(str(run_dir)) == ["tiny"]
    assert predictor.model_names(str(run_dir / "export" / "tiny" / "2")) == ["tiny"]
    assert predictor.model_names("baseline:centre-bias") == ["baseline:centre-bias"]
    with pytest.raises(ValueError, match="Cannot read model .* expected baseline:NAME"):
        predictor.model_names(str(run_dir / "export"))


@pytest.mark.parametrize("resize", ["pad", "stretch"])
def test_predictions_return_to_the_original_geometry(resize):
    rows, cols = np.mgrid[0:40, 0:80]
    image = np.stack([rows * 4.0 + cols, rows * 0.0, cols * 3.0], -1).astype(np.uint8)
    predict = predictor.predictor_from_function(
        lambda batch: batch[..., :1], INPUT_SIZE, "map", resize=resize
    )
    saliency = predict(image)
    assert saliency.shape == (40, 80)
    interior = (slice(4, -4), slice(4, -4))
    np.testing.assert_allclose(saliency[interior], image[..., 0][interior], atol=6)


@pytest.mark.parametrize("shape", [(10, 14), (100, 140), (40, 20)])
@pytest.mark.parametrize("resize", ["pad", "stretch"])
def test_predictors_feed_the_model_the_pixels_it_was_trained_on(shape, resize):
    image = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    seen = []

    def serve(batch):
        seen.append(batch[0].copy())
        return batch[..., :1]

    predictor.predictor_from_function(serve, INPUT_SIZE, "map", resize=resize)(image)
    trained_on, _ = targets.make_example(image, [[0.0, 0.0]], None, INPUT_SIZE, resize)
    np.testing.assert_array_equal(seen[0], trained_on)


def test_saved_model_without_metadata_is_refused(tmp_path):
    folder = tmp_path / "bare"
    tiny_log_density_model().export(str(folder), format="tf_saved_model", verbose=False)
    with pytest.raises(ValueError, match="tfsal.json"):
        predictor.resolve_model(str(folder))


@pytest.mark.parametrize(
    "metadata, message",
    [('{"model": "tiny", "output": "map"}', r"lacks \['input_size'\]"), ("{", "not valid JSON")],
)
def test_saved_model_with_incomplete_metadata_is_refused(run_dir, tmp_path, metadata, message):
    folder = tmp_path / "copy"
    shutil.copytree(run_dir / "export" / "tiny" / "2", folder)
    (folder / constants.METADATA_DIR / constants.METADATA_FILE).write_text(metadata)
    with pytest.raises(ValueError, match=message):
        predictor.resolve_model(str(folder))


def test_fitted_centre_bias_is_fitted_on_images_not_evaluated():
    dataset = open_dataset("popout", num_images=6, image_size=64)
    ids = dataset.ids()
    fitted = []

    def training_records():
        fitted.extend(ids[3:])
        return [dataset.load(image_id) for image_id in ids[3:]]

    models = predictor.resolve_model("baseline:fitted-centre-bias", training_records)
    assert fitted == ids[3:]
    report = evaluation.evaluate_models(dataset, ids[:3], models, progress=False)
    assert report["results"]["baseline:fitted-centre-bias"]["AUC-Judd"] > 0.0
    expected = baselines.FittedCentreBias.from_records(dataset.load(i) for i in ids[3:])
    image = dataset.load(ids[0]).image
    np.testing.assert_array_equal(models["baseline:fitted-centre-bias"](image), expected(image))
