"""A run's recorded config.yaml: one file name, and what a null val_fraction means."""

import re
from pathlib import Path

import pytest
import yaml

from tests.test_case import error_line
from training import configs, derive, fit, report

ROOT = Path(__file__).resolve().parents[2]


def _run_with_null_val_fraction(folder: Path) -> Path:
    folder.mkdir()
    recorded = configs.to_dict(configs.FitConfig(out=str(folder), val_fraction=0.1))
    recorded["val_fraction"] = None  # hand-edited
    (folder / configs.CONFIG_FILE).write_text(yaml.safe_dump(recorded))
    return folder


def test_the_config_file_name_is_defined_once():
    pattern = re.compile(r"""["']config\.yaml["']""")
    defined = [
        str(path.relative_to(ROOT))
        for package in ("tfsal", "serving", "training", "benchmarks")
        for path in (ROOT / package).rglob("*.py")
        if pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert defined == ["training/configs.py"]


def test_a_null_val_fraction_in_a_runs_config_gives_one_clear_line(tmp_path, capsys):
    run = _run_with_null_val_fraction(tmp_path / "run")
    with pytest.raises(ValueError, match="val_fraction must be set in a run's recorded") as error:
        configs.read_run_config(run)
    assert str(run / configs.CONFIG_FILE) in str(error.value)
    assert "Received: val_fraction=None" in str(error.value)
    # Each command that reads a run says so before any work (no checkpoint is needed).
    assert derive.main([str(run)]) == 2
    assert "val_fraction must be set" in error_line(capsys)
    assert report.main([str(run)]) == 2
    assert "val_fraction must be set" in error_line(capsys)
    with pytest.raises(ValueError, match="val_fraction must be set"):
        fit.config_from_args(fit.build_parser().parse_args(["--resume", "--out", str(run)]))


def test_derive_refuses_a_null_val_fraction_set_on_its_command_line(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    config = configs.FitConfig(out=str(run), val_fraction=0.1)
    (run / configs.CONFIG_FILE).write_text(configs.to_yaml(config))
    assert derive.main([str(run), "--set", "val_fraction=null"]) == 2
    assert "val_fraction must be set" in error_line(capsys)


def test_a_null_val_fraction_in_a_settings_file_means_the_recipes(tmp_path):
    settings = tmp_path / "settings.yaml"
    settings.write_text("val_fraction: null\nepochs: 1\n")
    args = fit.build_parser().parse_args(["--config", str(settings), "--out", "unused"])
    config = fit.config_from_args(args)
    assert config.val_fraction is None
    assert configs.resolve(config).val_fraction == 0.1  # the pop-out recipe's
