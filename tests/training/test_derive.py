import argparse
import json

import keras
import pytest

from tests.test_case import error_line
from tests.training import tiny_model
from training import configs, derive

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def finished_run(tiny_run):
    # Derived again below, in place: a run no other test uses.
    return tiny_run("--set", "derive.enabled=false")


@pytest.mark.slow
def test_a_finished_run_is_derived_again_without_retraining(finished_run, capsys):
    checkpoints = sorted(p.name for p in (finished_run / "checkpoints").iterdir())
    assert not (finished_run / "export" / "tiny_test_explainable").exists()
    assert derive.main([str(finished_run), "--readout", "decoder", "--fine-tune-epochs", "1"]) == 0
    printed = capsys.readouterr().out
    assert sorted(p.name for p in (finished_run / "checkpoints").iterdir()) == checkpoints
    fidelity = json.loads((finished_run / "derivation.json").read_text())
    assert fidelity["readout"] == "decoder" and "encoder" in fidelity["taps"]
    metrics = json.loads((finished_run / "metrics.json").read_text())
    assert {"tiny_test", "tiny_test_explainable", "baseline:centre-bias"} <= set(metrics["results"])
    assert (finished_run / "export" / "tiny_test_explainable" / "1" / "saved_model.pb").is_file()
    # Progress of the streamed passes and the fine-tuning epochs.
    for label in ("reconstruction (training images)", "fine-tuning", "batch"):
        assert label in printed
    # The page was rebuilt: it now shows the explainable model, and nothing is stale.
    page = (finished_run / "report" / "index.html").read_text()
    assert "1. Activation maps" in page and 'id="stale"' not in page
    assert "tiny_test_explainable/1" in page
    assert (finished_run / "derivation-statistics.npz").is_file()
    # Linear again, with the centre prior's widths of --set: a new version.
    widths = ["--set", "derive.prior_widths=[0.3, 0.9]"]
    assert derive.main([str(finished_run), "--no-report", *widths]) == 0
    version = finished_run / "export" / "tiny_test_explainable" / "2"
    exported = keras.models.load_model(version / "model.keras", compile=False)
    assert exported.get_layer("centre_prior").widths == (0.3, 0.9)
    assert json.loads((finished_run / "derivation.json").read_text())["readout"] == "linear"
    # Not rebuilt: the old page says it is out of date, and how to rebuild it.
    page = (finished_run / "report" / "index.html").read_text()
    assert 'id="stale"' in page and f"python -m training.report {finished_run}" in page


@pytest.mark.slow
def test_a_page_that_cannot_be_rebuilt_stays_whole_and_marked(tiny_run, monkeypatch, capsys):
    from training import run_report

    run = tiny_run("--set", "derive.readout_epochs=1")  # a run no other test uses
    before = sorted(p.name for p in (run / "report").iterdir())

    def disk_full(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(run_report, "write_run_report", disk_full)
    with pytest.raises(OSError, match="disk full"):
        derive.main([str(run)])
    assert "the old page stays, marked out of date" in capsys.readouterr().err
    assert sorted(p.name for p in (run / "report").iterdir()) == before
    assert 'id="stale"' in (run / "report" / "index.html").read_text()


@pytest.mark.slow
def test_taps_the_model_lacks_give_one_clear_line(finished_run, capsys):
    assert derive.main([str(finished_run), "--taps", "nope"]) == 2
    line = error_line(capsys)
    assert "has no tap 'nope'" in line and "model.summary()" in line


def test_a_run_folder_without_checkpoints_says_what_to_do(tmp_path, capsys):
    run = tmp_path / "untrained"
    run.mkdir()
    config = configs.FitConfig(
        model=tiny_model.NAME, image_size=[32, 32], out=str(run), val_fraction=0.2
    )
    (run / configs.CONFIG_FILE).write_text(configs.to_yaml(config))
    assert derive.main([str(run)]) == 2
    line = error_line(capsys)
    assert "holds no checkpoint" in line and f"python -m training.fit --out {run}" in line


def test_a_folder_that_is_not_a_run_is_refused(tmp_path, capsys):
    assert derive.main([str(tmp_path)]) == 2
    assert "not a training.fit run folder" in error_line(capsys)


def test_help_names_the_outputs(capsys):
    with pytest.raises(SystemExit):
        derive.main(["--help"])
    text = capsys.readouterr().out
    for option in ("RUN_DIR", "--taps", "--readout", "export/<model>_explainable"):
        assert option in text


def test_a_run_saved_before_a_derive_setting_existed_gets_the_recipes(tmp_path):
    # The NUS UNISAL run's config.yaml predates the derive section: every derive
    # setting a recipe fills was None and blur_sigma / None failed in the model build.
    run = tmp_path / "old"
    run.mkdir()
    text = (
        f"model: unisal\ndata: nus:{tmp_path}\nimage_size: [64, 64]\nval_fraction: 0.2\n"
        f"out: {run}\n"
    )
    (run / "config.yaml").write_text(text)
    flags = dict(taps=None, readout=None, readout_epochs=None, fine_tune_epochs=None)
    config = derive.load_run_config(run, argparse.Namespace(**flags, set=[]))
    # UNISAL on a small data set: its recipe's derive settings (training/recipes.py).
    assert config.derive.blur_sigma == 4.0 and config.derive.context_sigmas == [16, 32, 64]
    assert config.derive.image_normalisation is True and config.derive.readout_epochs == 25
    assert config.derive.learning_rate == 0.02
    assert config.derive.prior_widths == [0.125, 0.25, 0.5, 1.0, 2.0]
    assert config.derive.normalisation_statistics == ["ratio", "excess", "local"]
    assert config.derive.normalisation_sigma == 8.0  # a small surround
    assert config.derive.prior_scale == 0.85
    assert config.derive.reconstruction_kernel_size == 3 and config.derive.pooled_banks is True
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.yaml").write_text(text.replace("unisal", "cmrnet"))
    config = derive.load_run_config(other, argparse.Namespace(**flags, set=[]))
    assert (config.derive.readout_epochs, config.derive.reconstruction_kernel_size) == (5, 1)
    assert config.derive.context_sigmas == [] and config.derive.pooled_banks is False
    assert config.derive.normalisation_sigma == 32.0 and config.derive.prior_scale == 1.0
    bad_scale = argparse.Namespace(**flags, set=["derive.prior_scale=-0.5"])
    with pytest.raises(ValueError, match="prior_scale must be >= 0"):
        derive.load_run_config(run, bad_scale)
    for sigma in ("0", "[16, 16]", "[]", "[16, -4]"):
        bad_sigma = argparse.Namespace(**flags, set=[f"derive.normalisation_sigma={sigma}"])
        with pytest.raises(ValueError, match="normalisation_sigma must be a width > 0 or a list"):
            derive.load_run_config(run, bad_sigma)
    # Several surrounds, one "local" copy each; one number stays one surround.
    for sigma, expected in (("[16, 64]", [16.0, 64.0]), ("24", 24.0)):
        several = argparse.Namespace(**flags, set=[f"derive.normalisation_sigma={sigma}"])
        assert derive.load_run_config(run, several).derive.normalisation_sigma == expected
    assert config.derive.prior_widths == [0.25, 0.5, 1.0]  # CentrePrior's defaults
    assert config.derive.learning_rate == 0.05
    bad = argparse.Namespace(**flags, set=["derive.reconstruction_kernel_size=2"])
    with pytest.raises(ValueError, match="reconstruction_kernel_size must be an odd int >= 1"):
        derive.load_run_config(run, bad)
    for widths in ("[]", "[0.5, 0]"):
        bad = argparse.Namespace(**flags, set=[f"derive.prior_widths={widths}"])
        with pytest.raises(ValueError, match="prior_widths must list one or more widths > 0"):
            derive.load_run_config(run, bad)
    explicit = argparse.Namespace(**flags, set=["derive.readout_epochs=0"])
    assert derive.load_run_config(run, explicit).derive.readout_epochs == 0
