import dataclasses
import errno
import json

import keras
import numpy as np
import pytest
import yaml

import tfsal
from tests.test_case import error_line
from tests.training import tiny_model
from training import callbacks, configs, fit, recipes

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _fit(tmp_path, *extra, out="run"):
    return fit.main([*tiny_model.FAST_ARGS, "--out", str(tmp_path / out), *extra])


@pytest.mark.slow
def test_the_whole_job_runs_and_says_where_everything_went(tmp_path, capsys):
    assert _fit(tmp_path, "--epochs", "2") == 0
    printed = capsys.readouterr().out
    out = tmp_path / "run"
    resolved = yaml.safe_load((out / "config.yaml").read_text())
    assert resolved["model"] == "tiny_test" and resolved["epochs"] == 2
    assert resolved["optimizer"]["name"] == "adam"  # paper defaults filled in
    assert [p.name for p in callbacks.list_checkpoints(out / "checkpoints")] == [
        "epoch-0001.npz",
        "epoch-0002.npz",
    ]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_images"] == 5
    assert {"tiny_test", "baseline:centre-bias", "baseline:spectral-residual"} <= set(
        metrics["results"]
    )
    assert {"CC", "NSS", "AUC-Judd", "sAUC", "SIM", "KLD"} <= set(metrics["results"]["tiny_test"])
    export = out / "export" / "tiny_test" / "1"
    metadata = json.loads((export / "assets.extra" / "tfsal.json").read_text())
    assert metadata["tfsal_version"] == tfsal.__version__  # the report checks it
    assert {key: metadata[key] for key in ("model", "output", "input_size", "resize")} == {
        "model": "tiny_test",
        "output": "log_density",
        "input_size": [32, 32],
        "resize": "pad",
    }
    assert "serving_default" in metadata["signatures"]  # serving.export wrote it
    assert (out / "export" / "models.config").is_file()  # ready to mount as /models
    page = (out / "report" / "index.html").read_text()
    assert "baseline:centre-bias" in page and "sample-00-model.png" in page
    assert (out / "report" / "sample-01-truth.png").stat().st_size > 0
    assert list((out / "logs").rglob("events.out.tfevents.*"))
    for where in ("checkpoints", "metrics.json", "export/tiny_test/1", "report/index.html"):
        assert where in printed
    # Stage 2: the explainable model, scored next to the deep model and exported.
    assert "tiny_test_explainable" in metrics["results"]
    assert {"CC", "NSS", "KLD"} <= set(metrics["results"]["tiny_test_explainable"])
    derivation = json.loads((out / "derivation.json").read_text())
    assert derivation["readout"] == "linear" and set(derivation["taps"]) == {"encoder"}
    assert derivation["taps"]["encoder"]["stride"] == 1
    explainable = out / "export" / "tiny_test_explainable" / "1"
    metadata = json.loads((explainable / "assets.extra" / "tfsal.json").read_text())
    assert metadata["model"] == "tiny_test_explainable" and metadata["parent"] == "tiny_test"
    assert "explain" in metadata["signatures"]  # serving.export told it by its outputs
    assert metadata["contribution_groups"][-1] == "prior"
    for where in ("derivation.json", "export/tiny_test_explainable/1", "validation R²"):
        assert where in printed


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--model", "no_such_model"], "Unknown model 'no_such_model'"),
        (["--data", "nosuchformat:/tmp"], "nosuchformat"),
        (["--image-size", "30", "32"], "multiples of 4"),
        (["--epochs", "0"], "epochs must be >= 1"),
        (["--set", "optimizer.learning_rate=-1"], "optimizer.learning_rate must be > 0"),
        (["--set", "no_such_setting=1"], "Unknown setting"),
        (["--resume"], None),
        (["--config", "/no/such/file.yaml"], "not found"),
        (["--set", "derive.taps=[nope]"], "has no tap 'nope'"),
        (["--set", "derive.readout=attention"], "derive.readout must be 'linear' or 'decoder'"),
        (["--set", "derive.context_sigmas=[8, 0]"], "derive.context_sigmas must all be > 0"),
        (
            ["--set", "derive.reconstruction_learning_rate=0"],
            "derive.reconstruction_learning_rate must be > 0",
        ),
    ],
)
def test_bad_input_gives_one_clear_line(tmp_path, capsys, arguments, message):
    if arguments == ["--resume"]:
        # --resume without --out: the test helper adds --out, so call fit directly.
        assert fit.main(["--resume"]) == 2
        assert "--resume needs --out" in error_line(capsys)
        return
    assert _fit(tmp_path, *arguments) == 2
    assert message in error_line(capsys)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_an_empty_data_set_is_refused(tmp_path, capsys):
    (tmp_path / "empty" / "images").mkdir(parents=True)
    assert _fit(tmp_path, "--data", f"folder:{tmp_path / 'empty'}") == 2
    line = error_line(capsys)
    assert "0 image" in line or "no image" in line.lower()


def test_a_bad_training_file_is_named_before_the_first_epoch(tmp_path, capsys):
    from tests.data.conftest import random_image, write_folder

    entries = {f"im{i}": (random_image(32, 32, i), [(4, 5, 0), (20, 9, 1)]) for i in range(6)}
    root = write_folder(tmp_path / "f", entries)
    image = root / "images" / "im4.png"
    image.write_bytes(image.read_bytes()[:-30])
    assert _fit(tmp_path, "--data", f"folder:{root}") == 2
    error = capsys.readouterr().err
    assert "error: 1 of 6 images of the folder data set cannot be used" in error
    assert "im4.png: truncated PNG" in error and "Traceback" not in error
    assert not (tmp_path / "run" / "config.yaml").exists()
    assert not (tmp_path / "run" / "checkpoints").exists()


def _write_checkpoint(folder, identity, epoch=1):
    model = tiny_model._build()
    path = callbacks.checkpoint_path(folder, epoch)
    callbacks.write_state(path, model, {"epoch": epoch, "identity": identity, "extra": {}})
    return path


def _identity(**changes):
    config = configs.FitConfig(model="tiny_test", image_size=[32, 32], batch_size=4, **changes)
    return configs.run_identity(config)


def test_an_output_folder_with_checkpoints_needs_resume(tmp_path, capsys):
    _write_checkpoint(tmp_path / "run" / "checkpoints", _identity())
    assert _fit(tmp_path) == 2
    assert "Pass --resume" in error_line(capsys)


def test_another_runs_checkpoints_are_refused_on_resume(tmp_path, capsys):
    path = _write_checkpoint(tmp_path / "run" / "checkpoints", _identity(seed=7))
    before = path.read_bytes()
    assert _fit(tmp_path, "--resume") == 2
    line = error_line(capsys)
    assert "different run" in line and "seed: 7 there, 0 here" in line
    assert path.read_bytes() == before


def test_a_corrupt_checkpoint_is_reported_on_resume(tmp_path, capsys):
    path = _write_checkpoint(tmp_path / "run" / "checkpoints", _identity())
    path.write_bytes(path.read_bytes()[:100])
    leftover = path.parent / ".epoch-0002.npz.x1y2.tmp"  # a write cut short by a kill
    leftover.write_bytes(b"partial")
    assert _fit(tmp_path, "--resume") == 2
    line = error_line(capsys)
    assert "epoch-0001.npz is corrupt" in line and "Delete it" in line
    assert not leftover.exists()


def test_a_failed_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    model = tiny_model._build()
    folder = tmp_path / "checkpoints"
    good = _write_checkpoint(folder, _identity())
    before = good.read_bytes()

    def disk_full(handle, **arrays):
        handle.write(b"partial data")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(callbacks.CheckpointError, match="No space left on device.*intact"):
        callbacks.write_state(good, model, {"epoch": 2})
    assert good.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["epoch-0001.npz"]  # no temp file


@pytest.mark.slow
def test_a_failed_checkpoint_write_stops_the_cli_with_one_line(tmp_path, capsys, monkeypatch):
    calls = []
    real_savez = np.savez

    def full_after_first_epoch(handle, **arrays):
        calls.append(1)
        if len(calls) > 2:  # epoch 1 and best.npz succeed, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        real_savez(handle, **arrays)

    monkeypatch.setattr(np, "savez", full_after_first_epoch)
    assert _fit(tmp_path, "--epochs", "3", "--set", "early_stopping_patience=0") == 2
    assert "No space left on device" in error_line(capsys)
    checkpoints = callbacks.list_checkpoints(tmp_path / "run" / "checkpoints")
    assert [p.name for p in checkpoints] == ["epoch-0001.npz"]
    record, _, _ = callbacks.read_state(checkpoints[0])
    assert record["epoch"] == 1


def test_yaml_config_and_flags_resolve_in_order(tmp_path):
    config_file = tmp_path / "settings.yaml"
    config_file.write_text(
        "model: unisal\nepochs: 4\noptimizer:\n  learning_rate: 0.01\nloss:\n  nss_weight: 0.2\n"
    )
    args = fit.build_parser().parse_args(
        ["--config", str(config_file), "--epochs", "6", "--set", "optimizer.clip_norm=1.5"]
    )
    config = fit.config_from_args(args)
    assert config.epochs == 6  # the flag beats the file
    assert config.optimizer.learning_rate == 0.01  # the file beats the paper default
    assert config.optimizer.name == "sgd" and config.optimizer.decay_per_epoch == 0.8  # UNISAL
    assert config.optimizer.clip_norm == 1.5
    assert config.loss.nss_weight == 0.2 and config.loss.cc_weight == 0.1
    assert config.out.startswith("runs")
    resolved = configs.resolve_model_defaults(config)
    assert resolved.batch_size == 32  # UNISAL's SALICON batch
    round_trip = tmp_path / "config.yaml"
    round_trip.write_text(configs.to_yaml(resolved))
    assert configs.load_yaml(round_trip) == resolved


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        fit.main(["--help"])
    text = capsys.readouterr().out
    for option in (
        "--model",
        "--data",
        "--out",
        "--epochs",
        "--batch-size",
        "--image-size",
        "--weights",
        "--resume",
        "--config",
        "--seed",
        "--set",
    ):
        assert option in text


@pytest.mark.slow
def test_a_checkpoint_restores_model_and_optimizer(tmp_path):
    model = tiny_model._build()
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
    images = np.random.default_rng(0).random((2, 8, 8, 3)).astype("float32")
    model.fit(images, {"saliency": np.zeros((2, 8, 8, 1), "float32")}, verbose=0)
    path = tmp_path / "epoch-0001.npz"
    callbacks.write_state(path, model, {"epoch": 1})
    other = tiny_model._build()
    other.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
    other.optimizer.build(other.trainable_variables)
    record = callbacks.restore_state(path, other)
    assert record["epoch"] == 1
    for a, b in zip(model.variables, other.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    for a, b in zip(model.optimizer.variables, other.optimizer.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(other.optimizer.iterations) == 1


def test_a_non_finite_epoch_is_not_checkpointed(tmp_path):
    model = tiny_model._build()
    model.compile(optimizer=keras.optimizers.Adam(0.1), loss="mse")
    checkpoint = callbacks.EpochCheckpoint(tmp_path, identity={})
    checkpoint.set_model(model)
    checkpoint.on_epoch_end(0, {"loss": 1.0, "val_cc": 0.5})
    checkpoint.on_epoch_end(1, {"loss": float("nan"), "val_cc": float("nan")})
    assert [p.name for p in callbacks.list_checkpoints(tmp_path)] == ["epoch-0001.npz"]
    assert checkpoint.best_epoch == 1 and (tmp_path / callbacks.BEST_WEIGHTS).is_file()


def test_unisal_defaults_to_the_small_data_recipe_on_small_data_sets():
    args = fit.build_parser().parse_args(["--model", "unisal", "--data", "nus:/nowhere"])
    small = configs.resolve_model_defaults(fit.config_from_args(args))
    assert small.optimizer.name == "adam" and small.optimizer.learning_rate == 1e-3
    assert small.optimizer.frozen_backbone_epochs == configs.FROZEN_THROUGHOUT
    assert (small.batch_size, small.image_size, small.epochs) == (8, [224, 224], 14)
    assert small.early_stopping_patience > 0 and small.augment
    # Flags and files still win, and SALICON keeps the paper's recipe.
    args = fit.build_parser().parse_args(
        ["--model", "unisal", "--data", "nus:/nowhere", "--image-size", "288", "384"]
    )
    assert configs.resolve_model_defaults(fit.config_from_args(args)).image_size == [288, 384]
    args = fit.build_parser().parse_args(["--model", "unisal", "--data", "salicon:/nowhere"])
    paper = configs.resolve_model_defaults(fit.config_from_args(args))
    assert paper.optimizer == recipes.UNISAL_SALICON_RECIPE["optimizer"]
    assert (paper.batch_size, paper.image_size) == (32, None)


def test_frozen_backbone_epochs_below_minus_one_is_refused():
    config = configs.FitConfig(optimizer=configs.OptimizerConfig(frozen_backbone_epochs=-2))
    with pytest.raises(ValueError, match="frozen_backbone_epochs"):
        configs.validate(config)


def test_an_encoder_frozen_throughout_keeps_imagenet_batch_norm_statistics():
    import tensorflow as tf

    from training import trainer

    config = configs.FitConfig(model="unisal", data="nus:/nowhere", image_size=[64, 64])
    config = configs.resolve_model_defaults(config)
    model = trainer.build_model(dataclasses.replace(config, encoder_weights=None))
    trainer.compile_model(model, config, "log_density", keras.optimizers.Adam())
    trainer._set_backbone_frozen(
        model, True, tf.distribute.get_strategy(), config, "log_density", throughout=True
    )
    frozen = {layer.name for layer in model.layers if not layer.trainable}
    assert {"stem_conv", "block_17_project", "head", "head_bn", "smoothing"} <= frozen
    assert "adaptation" not in frozen and "gaussian_prior" not in frozen
    statistics = model.get_layer("head_bn").moving_mean.numpy().copy()
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    model(images, training=True)
    np.testing.assert_array_equal(model.get_layer("head_bn").moving_mean.numpy(), statistics)
