import csv
import json
import shutil

import cv2
import keras
import numpy as np
import pytest

from serving import constants
from tfsal import baselines
from tfsal.data import density as density_lib
from tfsal.data import open_dataset, targets
from training import evaluate

INPUT_SIZE = (32, 32)


def tiny_log_density_model():
    """A small model of the tfsal conventions: RGB in [0, 255] -> log-density."""
    inputs = keras.Input((*INPUT_SIZE, 3))
    scaled = keras.layers.Rescaling(1 / 255)(inputs)
    logits = keras.layers.Conv2D(1, 5, padding="same", kernel_initializer="ones")(scaled)
    flat = keras.layers.Reshape((INPUT_SIZE[0] * INPUT_SIZE[1],))(logits)
    log_density = keras.layers.Reshape((*INPUT_SIZE, 1))(keras.ops.log_softmax(flat, axis=-1))
    return keras.Model(inputs, {"saliency": log_density}, name="tiny")


def export(model, folder, output="log_density"):
    model.export(str(folder), format="tf_saved_model", verbose=False)
    metadata = {"model": "tiny", "output": output, "input_size": list(INPUT_SIZE)}
    (folder / constants.METADATA_DIR).mkdir(exist_ok=True)
    (folder / constants.METADATA_DIR / constants.METADATA_FILE).write_text(json.dumps(metadata))
    return folder


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    stale = run / "export" / "tiny" / "1"
    stale.mkdir(parents=True)
    (stale / "saved_model.pb").write_bytes(b"not a model: the newest version must be used")
    export(tiny_log_density_model(), run / "export" / "tiny" / "2")
    return run


def test_evaluate_models_scores_baselines_on_pop_out():
    dataset = open_dataset("popout", num_images=4, image_size=64)
    models = {"uniform": baselines.uniform, "signature": baselines.image_signature}
    report = evaluate.evaluate_models(dataset, dataset.ids(), models, progress=False)
    assert report["dataset"] == "popout" and report["n_images"] == 4
    assert report["metrics_absent"] == {}
    uniform, signature = report["results"]["uniform"], report["results"]["signature"]
    assert set(evaluate.METRICS) <= set(uniform)
    assert uniform["AUC-Judd"] == 0.5 and uniform["NSS"] == 0.0 and uniform["CC"] == 0.0
    assert signature["NSS"] > 1.0 and signature["AUC-Judd"] > 0.8
    assert {"GSI", "MSR_targ", "MSR_bg", "numfix2find"} <= set(signature)
    again = evaluate.evaluate_models(dataset, dataset.ids(), models, progress=False)
    assert again == report


def test_command_on_pop_out_with_baselines_and_a_saved_model(run_dir, tmp_path, capsys):
    json_path, csv_path = tmp_path / "results.json", tmp_path / "results.csv"
    status = evaluate.main(
        [
            "--data",
            "popout",
            "--model",
            "baseline:centre-bias",
            "--model",
            "baseline:spectral-residual",
            "--model",
            str(run_dir),
            "--limit",
            "3",
            "--json",
            str(json_path),
            "--csv",
            str(csv_path),
        ]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "| baseline:centre-bias |" in printed and "| tiny |" in printed
    report = json.loads(json_path.read_text())
    assert report["n_images"] == 3 and report["dataset"] == "popout"
    assert list(report["results"]) == ["baseline:centre-bias", "baseline:spectral-residual", "tiny"]
    for values in report["results"].values():
        assert set(evaluate.METRICS) <= set(values)
        assert all(np.isfinite(v) for v in values.values())
    rows = list(csv.DictReader(csv_path.open()))
    assert [row["model"] for row in rows] == list(report["results"])
    assert float(rows[2]["CC"]) == pytest.approx(report["results"]["tiny"]["CC"])

    # The SavedModel scores exactly like the Keras model it was exported from.
    keras_model = tiny_log_density_model()
    predictor = evaluate.predictor_from_function(
        lambda batch: keras_model(batch)["saliency"].numpy(), INPUT_SIZE, "log_density"
    )
    dataset = open_dataset("popout")
    direct = evaluate.evaluate_models(dataset, dataset.ids()[:3], {"k": predictor}, progress=False)
    for metric, value in direct["results"]["k"].items():
        assert report["results"]["tiny"][metric] == pytest.approx(value, abs=1e-5)


def test_saved_model_folder_is_accepted_directly(run_dir):
    models = evaluate.resolve_model(str(run_dir / "export" / "tiny" / "2"))
    assert list(models) == ["tiny"]
    image = np.random.default_rng(0).integers(0, 255, (50, 70, 3)).astype(np.uint8)
    saliency = models["tiny"](image)
    assert saliency.shape == (50, 70) and np.isfinite(saliency).all() and saliency.min() >= 0


@pytest.mark.parametrize("resize", ["pad", "stretch"])
def test_predictions_return_to_the_original_geometry(resize):
    rows, cols = np.mgrid[0:40, 0:80]
    image = np.stack([rows * 4.0 + cols, rows * 0.0, cols * 3.0], -1).astype(np.uint8)
    predictor = evaluate.predictor_from_function(
        lambda batch: batch[..., :1], INPUT_SIZE, "map", resize=resize
    )
    saliency = predictor(image)
    assert saliency.shape == (40, 80)
    interior = (slice(4, -4), slice(4, -4))
    np.testing.assert_allclose(saliency[interior], image[..., 0][interior], atol=6)


def write_density_folder(root, count=3):
    (root / "images").mkdir(parents=True)
    (root / "maps").mkdir()
    rng = np.random.default_rng(0)
    for index in range(count):
        image = rng.integers(0, 255, (40, 50, 3)).astype(np.uint8)
        density = np.zeros((40, 50), np.uint8)
        cv2.circle(density, (10 + 10 * index, 20), 6, 255, -1)
        cv2.imwrite(str(root / "images" / f"im{index}.png"), image)
        cv2.imwrite(str(root / "maps" / f"im{index}.png"), density)


def test_density_only_folder_reports_density_metrics_and_says_why(tmp_path, capsys):
    write_density_folder(tmp_path / "data")
    json_path = tmp_path / "out.json"
    status = evaluate.main(
        [
            "--data",
            f"folder:{tmp_path / 'data'}",
            "--model",
            "baseline:centre-bias",
            "--model",
            "baseline:uniform",
            "--json",
            str(json_path),
            "--csv",
            str(tmp_path / "out.csv"),
        ]
    )
    assert status == 0
    report = json.loads(json_path.read_text())
    assert set(report["results"]["baseline:centre-bias"]) == set(evaluate.DENSITY_METRICS)
    assert set(report["metrics_absent"]) == set(evaluate.FIXATION_METRICS)
    assert "no discrete fixations" in report["metrics_absent"]["NSS"]
    printed = capsys.readouterr().out
    assert "NSS absent: " in printed
    assert "CC" in (tmp_path / "out.csv").read_text().splitlines()[0]


def test_command_on_real_nus_data(nus_dir, tmp_path):
    json_path = tmp_path / "nus.json"
    status = evaluate.main(
        [
            "--data",
            f"nus:{nus_dir}",
            "--model",
            "baseline:centre-bias",
            "--model",
            "baseline:spectral-residual",
            "--model",
            "baseline:uniform",
            "--limit",
            "4",
            "--json",
            str(json_path),
            "--csv",
            str(tmp_path / "nus.csv"),
        ]
    )
    assert status == 0
    report = json.loads(json_path.read_text())
    assert report["n_images"] == 4 and report["metrics_absent"] == {}
    centre, uniform = (
        report["results"]["baseline:centre-bias"],
        report["results"]["baseline:uniform"],
    )
    assert set(evaluate.METRICS) == set(centre)
    assert uniform["AUC-Judd"] == 0.5
    assert centre["AUC-Judd"] > 0.65 and centre["NSS"] > 0.5


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--model", "baseline:itti"], "Unknown baseline 'itti'"),
        (["--model", "/no/such/model"], "Cannot read model '/no/such/model'"),
        (["--model", "baseline:uniform", "--limit", "0"], "--limit must be >= 1"),
        (["--model", "baseline:fitted-centre-bias"], "use --limit N below"),
        (["--data", "nope:/x", "--model", "baseline:uniform"], "Unknown data set format 'nope'"),
    ],
)
def test_bad_arguments_exit_with_a_clear_message(arguments, message, tmp_path, capsys):
    write_density_folder(tmp_path / "data", count=2)
    data = ["--data", f"folder:{tmp_path / 'data'}", "--csv", str(tmp_path / "x.csv")]
    assert evaluate.main(data + arguments) == 2
    assert message in capsys.readouterr().err


def test_saved_model_without_metadata_is_refused(tmp_path):
    folder = tmp_path / "bare"
    tiny_log_density_model().export(str(folder), format="tf_saved_model", verbose=False)
    with pytest.raises(ValueError, match="tfsal.json"):
        evaluate.resolve_model(str(folder))


def test_fitted_centre_bias_is_fitted_on_images_not_evaluated():
    dataset = open_dataset("popout", num_images=6, image_size=64)
    ids = dataset.ids()
    fitted = []

    def training_records():
        fitted.extend(ids[3:])
        return [dataset.load(image_id) for image_id in ids[3:]]

    models = evaluate.resolve_model("baseline:fitted-centre-bias", training_records)
    assert fitted == ids[3:]
    report = evaluate.evaluate_models(dataset, ids[:3], models, progress=False)
    assert report["results"]["baseline:fitted-centre-bias"]["AUC-Judd"] > 0.0
    expected = baselines.FittedCentreBias.from_records(dataset.load(i) for i in ids[3:])
    image = dataset.load(ids[0]).image
    np.testing.assert_array_equal(models["baseline:fitted-centre-bias"](image), expected(image))


def test_a_model_giving_nan_is_named_in_the_error():
    dataset = open_dataset("popout", num_images=2, image_size=64)

    def broken(image):
        return np.full(image.shape[:2], np.nan)

    with pytest.raises(ValueError, match=r"model 'broken' on image 'popout-0000'.*NaN"):
        evaluate.evaluate_models(dataset, dataset.ids(), {"broken": broken}, progress=False)


def test_pop_out_ratios_of_a_map_with_negative_values_use_the_shifted_map():
    dataset = open_dataset("popout", num_images=3, image_size=64)

    def negative(image):
        return baselines.image_signature(image) - 2.0

    def shifted(image):
        saliency = baselines.image_signature(image)
        return saliency - saliency.min()

    models = {"negative": negative, "shifted": shifted}
    results = evaluate.evaluate_models(dataset, dataset.ids(), models, progress=False)["results"]
    for metric in ("GSI", "MSR_targ", "MSR_bg", "numfix2find"):
        assert results["negative"][metric] == pytest.approx(results["shifted"][metric])
    assert -1.0 < results["negative"]["GSI"] < 1.0 and results["negative"]["MSR_targ"] > 0


def test_other_images_fixations_land_on_the_pixels_a_fixation_map_marks():
    fixations = np.array([[2.6, 3.6], [0.0, 0.0], [9.4, 19.0]])
    other = evaluate._other_fixation_map([(fixations, (10, 20))], (10, 20))
    np.testing.assert_array_equal(other, density_lib.fixation_map(fixations, (10, 20)))
    # From an image twice as large: pixel-corner coordinates halve, then truncate.
    halved = evaluate._other_fixation_map(
        [(np.array([[19.0, 39.0], [0.0, 1.0]]), (20, 40))], (10, 20)
    )
    assert np.argwhere(halved).tolist() == [[0, 0], [9, 19]]


@pytest.mark.parametrize("shape", [(10, 14), (100, 140), (40, 20)])
@pytest.mark.parametrize("resize", ["pad", "stretch"])
def test_predictors_feed_the_model_the_pixels_it_was_trained_on(shape, resize):
    image = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    seen = []

    def serve(batch):
        seen.append(batch[0].copy())
        return batch[..., :1]

    evaluate.predictor_from_function(serve, INPUT_SIZE, "map", resize=resize)(image)
    trained_on, _ = targets.make_example(image, [[0.0, 0.0]], None, INPUT_SIZE, resize)
    np.testing.assert_array_equal(seen[0], trained_on)


def test_a_model_giving_a_batch_axis_is_named_in_the_error_and_a_channel_axis_is_fine():
    dataset = open_dataset("popout", num_images=1, image_size=64)

    def batched(image):
        return baselines.centre_bias(image[::2, ::2])[None]

    def channel(image):
        return baselines.centre_bias(image[::2, ::2])[..., None]

    def plain(image):
        return baselines.centre_bias(image[::2, ::2])

    with pytest.raises(ValueError, match=r"'batched' on image 'popout-0000': a predictor must"):
        evaluate.evaluate_models(dataset, dataset.ids(), {"batched": batched}, progress=False)
    models = {"channel": channel, "plain": plain}
    results = evaluate.evaluate_models(dataset, dataset.ids(), models, progress=False)["results"]
    assert results["channel"] == results["plain"]


@pytest.mark.parametrize(
    "metadata, message",
    [('{"model": "tiny", "output": "map"}', r"lacks \['input_size'\]"), ("{", "not valid JSON")],
)
def test_saved_model_with_incomplete_metadata_is_refused(run_dir, tmp_path, metadata, message):
    folder = tmp_path / "copy"
    shutil.copytree(run_dir / "export" / "tiny" / "2", folder)
    (folder / constants.METADATA_DIR / constants.METADATA_FILE).write_text(metadata)
    with pytest.raises(ValueError, match=message):
        evaluate.resolve_model(str(folder))
