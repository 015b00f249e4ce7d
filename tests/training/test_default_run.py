"""The no-argument run (CMRNet on generated pop-out arrays) shows the method working."""

import json

import cv2
import numpy as np
import pytest

from tfsal.data import open_dataset
from training import configs, fit, job

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_the_default_run_is_cmrnet_on_2000_generated_arrays_at_96_px():
    config = configs.resolve(configs.FitConfig(out="unused"))
    assert (config.model, config.data) == ("cmrnet", "popout")
    assert config.image_size == [96, 96] and config.epochs == 3 and config.val_fraction == 0.1
    assert config.optimizer.decay_per_epoch == 0.5
    # Its explainable model is fitted on 400 of the training arrays unless told otherwise.
    assert config.derive.max_images == 400
    every = configs.FitConfig(out="unused", derive=configs.DeriveConfig(max_images=1800))
    assert configs.resolve(every).derive.max_images == 1800
    nus = configs.resolve(configs.FitConfig(model="unisal", data="nus:x", out="u"))
    assert nus.derive.max_images is None
    # Pop-out singletons are what is rare in an array: the recipe normalises the
    # magnitudes per image; other data sets do not unless asked, and a user's no wins.
    assert config.derive.image_normalisation is True and config.derive.context_sigmas == [12.0]
    assert nus.derive.context_sigmas == [16.0, 32.0, 64.0]  # UNISAL's small-data recipe
    assert nus.derive.image_normalisation is True  # ... which reads three copies
    cmrnet_nus = configs.resolve(configs.FitConfig(model="cmrnet", data="nus:x", out="u"))
    assert cmrnet_nus.derive.image_normalisation is False
    # ... as each channel's energy beyond its share of the array's mix; UNISAL on small
    # data reads it beside the ratio to the image mean, the library's default copy,
    # and the ratio to the channel's surround.
    assert config.derive.normalisation_statistics == ["excess"]
    assert nus.derive.normalisation_statistics == ["ratio", "excess", "local"]
    # ... the last over a surround of 8 px; elsewhere of 32 px.
    assert nus.derive.normalisation_sigma == 8.0
    assert cmrnet_nus.derive.normalisation_sigma == 32.0
    assert cmrnet_nus.derive.normalisation_statistics == ["ratio"]
    ratio = configs.DeriveConfig(normalisation_statistics=["ratio", "excess"])
    both = configs.resolve(configs.FitConfig(out="u", derive=ratio))
    assert both.derive.normalisation_statistics == ["ratio", "excess"]
    with pytest.raises(ValueError, match="derive.normalisation_statistics must list one or more"):
        bad = configs.DeriveConfig(normalisation_statistics=["mean"])
        configs.resolve(configs.FitConfig(out="u", derive=bad))
    assert config.derive.blur_sigma == 1.5 and nus.derive.blur_sigma == 4.0
    off = configs.FitConfig(out="u", derive=configs.DeriveConfig(image_normalisation=False))
    assert configs.resolve(off).derive.image_normalisation is False
    # The learning-rate halving is CMRNet's on pop-out arrays, not every model's.
    unisal = configs.resolve(configs.FitConfig(model="unisal", out="unused"))
    assert unisal.optimizer.name == "sgd" and unisal.epochs == 3
    # A value the user gave wins over the default run's.
    changed = configs.resolve(configs.FitConfig(out="unused", epochs=1, val_fraction=0.3))
    assert changed.epochs == 1 and changed.val_fraction == 0.3


def test_a_setting_the_user_gave_wins_even_when_it_equals_a_default():
    args = fit.build_parser().parse_args(["--set", "val_fraction=0.2", "--out", "unused"])
    assert configs.resolve(fit.config_from_args(args)).val_fraction == 0.2  # recipe: 0.1
    assert configs.DEFAULT_VAL_FRACTION == 0.2
    # Unset, it is the data set's recipe, else the general default.
    assert configs.resolve(configs.FitConfig(out="unused")).val_fraction == 0.1
    nus = configs.resolve(configs.FitConfig(model="unisal", data="nus:x", out="unused"))
    assert nus.val_fraction == configs.DEFAULT_VAL_FRACTION
    with pytest.raises(ValueError, match="val_fraction must be between 0 and 1"):
        configs.resolve(configs.FitConfig(out="unused", val_fraction=1.0))


@pytest.mark.slow
def test_the_default_recipe_beats_spectral_residual_on_arrays_it_never_saw(tmp_path):
    # The default recipe on half the arrays for half the epochs (900 + 100 images,
    # 2 epochs): the full run reaches CC 0.93 (BENCHMARKS.md, "Default run"). This
    # shortened run (with the optional gates) measured CC 0.29, NSS 3.9, GSI 0.27 against
    # spectral residual's 0.15, 1.8, 0.01 (2026-12-01, loaded cores: 7-10 minutes).
    config = configs.FitConfig(out=str(tmp_path / "run"), epochs=2, max_images=1000)
    outputs = job.run(config)
    metrics = json.loads(outputs.metrics.read_text())
    assert metrics["n_images"] == 100
    model = metrics["results"]["cmrnet"]
    peer = metrics["results"]["baseline:spectral-residual"]
    assert model["CC"] > peer["CC"] and model["NSS"] > peer["NSS"], metrics["results"]
    assert model["GSI"] > peer["GSI"], metrics["results"]


def test_the_default_run_generates_each_array_once():
    dataset, train_ids, val_ids = job.load_split(configs.resolve(configs.FitConfig(out="unused")))
    assert dataset.cache and len(train_ids) == 1800 and len(val_ids) == 200


def test_generated_arrays_are_not_read_twice_before_training(monkeypatch, tmp_path):
    checked = []
    monkeypatch.setattr(job, "check_records", lambda dataset, ids, *args: checked.append(ids))
    config = configs.resolve(configs.FitConfig(out="unused"))
    arrays = open_dataset("popout", num_images=3, image_size=64)
    assert job.check_data(config, arrays, arrays.ids()) is False and not checked
    (tmp_path / "images").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), np.zeros((8, 8, 3), np.uint8))
    folder = open_dataset(f"folder:{tmp_path}")
    assert job.check_data(config, folder, ["a"]) is True and checked == [["a"]]
