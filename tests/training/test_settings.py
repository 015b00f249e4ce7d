"""Settings and output paths of the main job are checked before anything is written."""

import pytest

from tests.test_case import error_line
from tests.training import tiny_model
from training import configs, evaluate, fit


def _fit(tmp_path, *extra, out="run"):
    return fit.main([*tiny_model.FAST_ARGS, "--out", str(tmp_path / out), *extra])


def test_numbers_written_with_an_exponent_are_numbers(tmp_path):
    # PyYAML reads 1e-3 as text (YAML 1.1 floats need a dot).
    args = fit.build_parser().parse_args(["--set", "optimizer.learning_rate=1e-3"])
    assert fit.config_from_args(args).optimizer.learning_rate == 0.001
    settings = tmp_path / "settings.yaml"
    settings.write_text("epochs: 3\noptimizer:\n  learning_rate: 1e-2\n  clip_norm: 2\n")
    config = configs.load_yaml(settings)
    assert config.optimizer.learning_rate == 0.01 and config.optimizer.clip_norm == 2.0
    assert isinstance(config.optimizer.clip_norm, float) and config.epochs == 3
    args = fit.build_parser().parse_args(["--set", "image_size=[64, 96]", "--set", "out=2024"])
    config = fit.config_from_args(args)
    assert config.image_size == [64, 96] and config.out == "2024"


@pytest.mark.parametrize(
    ("assignment", "message"),
    [
        ("epochs=abc", "epochs must be an integer"),
        ("epochs=2.5", "epochs must be an integer"),
        ("optimizer.learning_rate=fast", "optimizer.learning_rate must be a number"),
        ("optimizer.learning_rate=.inf", "optimizer.learning_rate must be a number"),
        ("augment=maybe", "augment must be true or false"),
        ("image_size=64", "image_size must be a list"),
        ("image_size=[64, x]", r"image_size[1] must be an integer"),
        ("optimizer=fast", "optimizer in the overrides must be a mapping"),
        ("optimizer.weight_decay=-0.1", "optimizer.weight_decay must be >= 0"),
        ("optimizer.clip_norm=-1", "optimizer.clip_norm must be > 0"),
        ("optimizer.clip_norm=0", "optimizer.clip_norm must be > 0"),
    ],
)
def test_a_wrong_setting_is_one_line_and_nothing_is_written(tmp_path, capsys, assignment, message):
    assert _fit(tmp_path, "--set", assignment) == 2
    assert message in error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_a_yaml_file_must_hold_a_mapping(tmp_path, capsys):
    settings = tmp_path / "list.yaml"
    settings.write_text("- epochs: 3\n- seed: 1\n")
    assert _fit(tmp_path, "--config", str(settings)) == 2
    assert "must hold a mapping of settings" in error_line(capsys)
    settings.write_text("epochs: [3]\n")
    assert _fit(tmp_path, "--config", str(settings)) == 2
    assert f"epochs must be an integer (in {settings})" in error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_an_image_size_beyond_the_memory_is_refused_with_the_reason(tmp_path, capsys):
    assert _fit(tmp_path, "--image-size", "65536", "65536") == 2
    line = error_line(capsys)
    assert "65536x65536" in line and "GiB" in line and "memory" in line
    assert not (tmp_path / "run").exists()
    configs.check_fits_in_memory([256, 256], 8)  # an ordinary size passes


def test_out_must_be_a_writable_folder(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    for out, message in (
        ("file", "is a file, not a folder"),
        ("file/run", "is inside"),
    ):
        assert _fit(tmp_path, out=out) == 2
        assert f"--out {tmp_path / out} {message}" in error_line(capsys)
    assert fit.main([*tiny_model.FAST_ARGS, "--out", "/sys/tfsal-run"]) == 2
    assert "cannot be written" in error_line(capsys)
    assert (tmp_path / "file").read_text() == "not a folder"


@pytest.mark.parametrize("flag", ["--json", "--csv"])
@pytest.mark.parametrize("place", ["/sys/results.out", "{tmp}", "{tmp}/file/results.out"])
def test_evaluate_checks_its_output_files_before_scoring(
    tmp_path, capsys, monkeypatch, flag, place
):
    (tmp_path / "file").write_text("")
    monkeypatch.setattr(evaluate, "open_dataset", pytest.fail)  # no work before the check
    arguments = ["--data", "popout", "--model", "baseline:uniform", "--csv", str(tmp_path / "x")]
    assert evaluate.main([*arguments, flag, place.format(tmp=tmp_path)]) == 2
    assert f"error: {flag} " in capsys.readouterr().err
