"""python -m training.evaluate: the command line of tfsal.evaluation."""

import csv
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from serving import predictor
from tests.serving.tiny_saved_model import INPUT_SIZE, tiny_log_density_model, write_run_folder
from tests.test_case import error_line
from tfsal import evaluation
from tfsal.data import open_dataset
from training import configs, evaluate, job, recipes


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return write_run_folder(tmp_path_factory.mktemp("run"))


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
        assert set(evaluation.METRICS) <= set(values)
        assert all(np.isfinite(v) for v in values.values())
    rows = list(csv.DictReader(csv_path.open()))
    assert [row["model"] for row in rows] == list(report["results"])
    assert float(rows[2]["CC"]) == pytest.approx(report["results"]["tiny"]["CC"])

    # The SavedModel scores exactly like the Keras model it was exported from.
    keras_model = tiny_log_density_model()
    predict = predictor.predictor_from_function(
        lambda batch: keras_model(batch)["saliency"].numpy(), INPUT_SIZE, "log_density"
    )
    dataset = open_dataset("popout")
    direct = evaluation.evaluate_models(dataset, dataset.ids()[:3], {"k": predict}, progress=False)
    for metric, value in direct["results"]["k"].items():
        assert report["results"]["tiny"][metric] == pytest.approx(value, abs=1e-5)


def write_density_folder(root, count=3):
    (root / "images").mkdir(parents=True)
    (root / "maps").mkdir()
    rng = np.random.default_rng(0)
    for index in range(count):
        image = rng.integers(0, 255, (40, 50, 3)).astype(np.uint8)
        density = np.zeros((40, 50), np.uint8)
        cv2.circle(density, (10 + (10 * index) % 40, 20), 6, 255, -1)
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
    assert set(report["results"]["baseline:centre-bias"]) == set(evaluation.DENSITY_METRICS)
    assert set(report["metrics_absent"]) == set(evaluation.FIXATION_METRICS)
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
    assert set(evaluation.METRICS) == set(centre)
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


def _trained_on(run_dir, folder, data):
    run = folder / "run"
    shutil.copytree(run_dir, run)
    config = configs.FitConfig(model="tiny", data=data, val_fraction=0.2)
    (run / configs.CONFIG_FILE).write_text(configs.to_yaml(config))
    return run


@pytest.mark.parametrize("data", [[], ["--data", "popout"]])
def test_a_run_folder_is_scored_on_the_data_set_it_was_trained_on(
    data, run_dir, tmp_path, monkeypatch
):
    run = _trained_on(run_dir, tmp_path, "popout")
    opened = []

    def open_and_record(spec, **options):
        opened.append((spec, options))
        return open_dataset(spec, **options)

    monkeypatch.setattr(evaluate, "open_dataset", open_and_record)
    json_path = tmp_path / "results.json"
    arguments = ["--model", str(run), "--limit", "2", "--json", str(json_path)]
    assert evaluate.main([*data, *arguments, "--csv", str(tmp_path / "results.csv")]) == 0
    # The generated set of the run (2000 arrays at 128 px), not the reader's defaults.
    generated = recipes.GENERATED_DATA_OPTIONS["popout"]
    assert opened == [("popout", generated)]
    report = json.loads(json_path.read_text())
    assert report["dataset"] == "popout" and report["data_options"] == generated
    assert list(report["results"]) == ["tiny"]


def test_other_data_than_the_runs_is_opened_as_given(run_dir, tmp_path):
    run = _trained_on(run_dir, tmp_path, "popout")
    assert evaluate.data_to_score("folder:/data", [str(run)]) == ("folder:/data", {}, {})
    assert evaluate.data_to_score("popout", ["baseline:uniform"]) == ("popout", {}, {})


def _scored(tmp_path, arguments):
    json_path = tmp_path / "scored.json"
    csv_path = ["--csv", str(tmp_path / "scored.csv"), "--json", str(json_path)]
    assert evaluate.main([*arguments, *csv_path]) == 0
    return json.loads(json_path.read_text())


def test_a_run_is_scored_on_its_own_validation_split_unless_all_images_are_asked_for(
    run_dir, tmp_path, capsys
):
    write_density_folder(tmp_path / "data", count=10)
    data = f"folder:{tmp_path / 'data'}"
    run = _trained_on(run_dir, tmp_path, data)
    # The job's evaluate stage and training.derive score job.load_split's validation ids.
    _, train_ids, val_ids = job.load_split(configs.read_run_config(run))
    assert len(val_ids) == 2 and not set(val_ids) & set(train_ids)

    # The same folder spelt another way is still the run's data set.
    relative = f"folder:{Path(os.path.relpath(tmp_path / 'data'))}/"
    for arguments in (
        ["--model", str(run)],
        ["--data", data, "--model", str(run)],
        ["--data", relative, "--model", str(run)],
    ):
        report = _scored(tmp_path, arguments)
        assert report["image_ids"] == val_ids and report["n_images"] == 2
        assert report["images_scored"] == f"the validation split of {run} (2 of 10 images)"
        assert f"2 images scored: the validation split of {run}" in capsys.readouterr().out

    everything = _scored(tmp_path, ["--model", str(run), "--all-images"])
    assert everything["n_images"] == 10 and everything["images_scored"] == "every image (10)"
    # A SavedModel folder is no run: every image, as before.
    saved_model = _scored(tmp_path, ["--data", data, "--model", str(run / "export" / "tiny" / "2")])
    assert saved_model["n_images"] == 10


def test_several_runs_are_scored_on_the_images_all_of_them_held_out(run_dir, tmp_path):
    all_ids = [f"im{index}" for index in range(40)]
    runs = {
        f"run{seed}": configs.FitConfig(model="tiny", data="folder:x", val_fraction=0.5, seed=seed)
        for seed in (0, 1)
    }
    image_ids, which = evaluate.images_to_score(all_ids, runs)
    first, second = (set(job.split_images(config, all_ids)[1]) for config in runs.values())
    assert set(image_ids) == first & second and 0 < len(image_ids) < 20
    assert which.startswith(f"the {len(image_ids)} of 40 images that every run held out")


def test_data_specs_name_one_data_set_whatever_the_path_spelling(tmp_path):
    assert evaluate.same_data("popout", "popout")
    assert evaluate.same_data(f"nus:{tmp_path}", f"nus:{tmp_path}/../{tmp_path.name}")
    assert not evaluate.same_data(f"nus:{tmp_path}", f"folder:{tmp_path}")
    assert not evaluate.same_data(f"nus:{tmp_path}", f"nus:{tmp_path / 'other'}")
    assert not evaluate.same_data("popout", "folder:popout")


def test_runs_that_held_out_no_image_in_common_are_refused(monkeypatch):
    halves = {0: (["b"], ["a"]), 1: (["a"], ["b"])}
    monkeypatch.setattr(job, "split_images", lambda config, ids: halves[config.seed])
    runs = {f"run{seed}": configs.FitConfig(val_fraction=0.5, seed=seed) for seed in (0, 1)}
    with pytest.raises(ValueError, match="hold out no image in common.*--all-images"):
        evaluate.images_to_score(["a", "b"], runs)


def test_without_data_the_run_folders_must_agree(run_dir, tmp_path, capsys):
    on_popout = _trained_on(run_dir, tmp_path / "a", "popout")
    on_nus = _trained_on(run_dir, tmp_path / "b", "nus:/data/nus")
    csv_path = ["--csv", str(tmp_path / "x.csv")]
    assert evaluate.main(["--model", str(on_popout), "--model", str(on_nus), *csv_path]) == 2
    assert "trained on different data sets" in error_line(capsys)
    assert evaluate.main(["--model", "baseline:uniform", *csv_path]) == 2
    assert "--data is needed unless a --model is a training.fit run folder" in error_line(capsys)


def test_two_models_of_one_name_are_refused_before_any_is_loaded(
    run_dir, tmp_path, monkeypatch, capsys
):
    def load(*args, **kwargs):
        raise AssertionError("a model or the data was loaded before the names were checked")

    monkeypatch.setattr(predictor, "load_saved_model", load)
    monkeypatch.setattr(evaluate, "resolve_model", load)
    monkeypatch.setattr(evaluate, "open_dataset", load)
    csv_path = ["--csv", str(tmp_path / "x.csv")]
    # The run folder exports "tiny", and its version folder export/tiny/2 is "tiny" too.
    version = run_dir / "export" / "tiny" / "2"
    models = ["--model", str(run_dir), "--model", "baseline:uniform", "--model", str(version)]
    assert evaluate.main(["--data", "popout", *models, *csv_path]) == 2
    line = error_line(capsys)
    assert f"Two models are named 'tiny' (--model {run_dir} and --model {version})" in line
    twice = ["--model", "baseline:uniform", "--model", "baseline:uniform"]
    assert evaluate.main(["--data", "popout", *twice, *csv_path]) == 2
    assert "--model baseline:uniform is given twice" in error_line(capsys)
