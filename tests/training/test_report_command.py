import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

import tfsal
from tests.test_case import error_line
from training import report as run_report

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Injected first into a copy of the page: records script errors and failed loads
# (capture phase: image errors do not bubble), then after load picks the last
# feature group, waits, and writes what went wrong into the DOM for --dump-dom.
_RECORDER = """<script>
window.__problems = [];
window.addEventListener("error", (event) => {
  const target = event.target;
  window.__problems.push(target && target.src ? "failed to load " + target.src
                                             : "script error: " + event.message);
}, true);
window.addEventListener("load", () => {
  const picker = document.getElementById("group-picker");
  if (picker) {
    picker.selectedIndex = picker.options.length - 1;
    picker.dispatchEvent(new Event("change"));
  }
  setTimeout(() => {
    document.querySelectorAll("img").forEach((img) => {
      if (!img.complete || img.naturalWidth === 0) window.__problems.push("empty image " + img.src);
    });
    const out = document.createElement("pre");
    out.id = "browser-check";
    out.textContent = JSON.stringify({problems: window.__problems,
                                      images: document.images.length});
    document.body.appendChild(out);
  }, 1000);
});
</script>"""


@pytest.fixture(scope="module")
def run(tiny_run):
    return tiny_run()


def _copy(run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    return copy


def browser_check(report: Path) -> dict:
    """Opens a copy of the page in headless Chromium; returns what went wrong."""
    page = (report / "index.html").read_text()
    checked = report / "_browser_check.html"
    checked.write_text(page.replace("<head>", "<head>" + _RECORDER, 1))
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [
                str(CHROMIUM),
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--virtual-time-budget=10000",
                "--dump-dom",
                checked.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    checked.unlink()
    found = re.search(r'<pre id="browser-check">(.*?)</pre>', result.stdout, re.S)
    assert found, f"the page did not finish loading: {result.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


@pytest.mark.slow
def test_the_job_writes_one_page_with_every_aspect(run):
    report = run / "report"
    page = (report / "index.html").read_text()
    for heading in (
        "Validation metrics",
        "fidelity to the deep model",
        "1. Activation maps",
        "2. Which filters",
        "3. Positional",
        "4. Colour processing",
        "Contribution maps",
    ):
        assert heading in page
    assert "tiny_test_explainable" in page and "baseline:centre-bias" in page
    for source in re.findall(r'src="([^"]+)"', page):
        assert (report / source).stat().st_size > 0, source
    assert "http://" not in page and "https://" not in page  # no network fetches
    record = json.loads((report / "report.json").read_text())
    numbers, plotted = record["numbers"], record["plotted"]
    # The plotted numbers are the measured ones.
    for aspect, entry in plotted["importance"].items():
        for index, label in enumerate(entry["labels"]):
            measured = numbers["importance"]["encoder"][aspect][label]
            assert entry["weight_share"]["encoder"][index] == measured["weight_share"]
            assert entry["r2_drop"]["encoder"][index] == measured["r2_drop"]
            assert entry["saliency_cc_drop"][index] == numbers["saliency_cc_drop"][aspect][label]
    bias = numbers["centre_bias"]
    assert plotted["centre_bias"]["reconstruction"] == [bias["taps"]["encoder"]["reconstruction"]]
    assert plotted["colour"]["luminance_angle_deg"] == [
        numbers["colour_transform"]["references"][r]["luminance_angle_deg"]
        for r in ("yuv", "opponent", "lab")
    ]
    assert numbers["fidelity"] == json.loads((run / "derivation.json").read_text())
    shown = np.array(plotted["reconstructions"][0]["encoder"]["reconstruction"])
    assert shown.ndim == 2 and np.ptp(shown) > 0
    # Both models' maps on the sample images, with their scores there.
    assert (report / "sample-00-explainable.png").is_file()
    assert "deep model: CC" in page and "explainable model: CC" in page
    # The job kept the normal equations, so the R² drop per group is a refit.
    assert (run / "derivation-statistics.npz").is_file()
    assert numbers["r2_drop_method"] == "refit" and "refitted without the group" in page


@pytest.mark.slow
def test_the_page_renders_in_a_browser_without_errors(run):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    result = browser_check(run / "report")
    assert result["problems"] == []
    assert result["images"] > 10


@pytest.mark.slow
def test_the_browser_check_catches_a_missing_image_and_a_script_error(run, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    report = _copy(run, tmp_path) / "report"
    (report / "importance.png").unlink()
    page = report / "index.html"
    broken = "<script>noSuchFunction();</script></body>"
    page.write_text(page.read_text().replace("</body>", broken))
    problems = browser_check(report)["problems"]
    assert any("importance.png" in problem for problem in problems)
    assert any("noSuchFunction" in problem for problem in problems)


@pytest.mark.slow
def test_the_command_rebuilds_the_report_in_place(run, tmp_path, capsys):
    copy = _copy(run, tmp_path)
    (copy / "report" / "stale.png").write_bytes(b"old")
    assert run_report.main([str(copy), "--images", "1"]) == 0
    assert "index.html" in capsys.readouterr().out
    report = copy / "report"
    assert not (report / "stale.png").exists()
    assert (report / "reconstructions-00.png").is_file()
    assert not (report / "reconstructions-01.png").exists()  # one image asked for
    record = json.loads((report / "report.json").read_text())
    assert record["numbers"]["r2_drop_method"] == "refit"  # from derivation-statistics.npz
    (copy / "derivation-statistics.npz").unlink()  # as in a run derived before it existed
    assert run_report.main([str(copy), "--images", "1"]) == 0
    record = json.loads((report / "report.json").read_text())
    assert record["numbers"]["r2_drop_method"] == "zeroed"
    assert "<em>not refitted</em>" in (report / "index.html").read_text()
    assert [p.name for p in copy.iterdir() if p.name.startswith(".report")] == []


@pytest.mark.slow
def test_a_run_without_an_explainable_model_says_how_to_derive_one(run, tmp_path, capsys):
    copy = _copy(run, tmp_path)
    shutil.rmtree(copy / "export" / "tiny_test_explainable")
    assert run_report.main([str(copy)]) == 2
    line = error_line(capsys)
    assert "no explainable model" in line and f"python -m training.derive {copy}" in line


@pytest.mark.slow
def test_a_run_from_another_tfsal_version_is_refused(run, tmp_path, capsys):
    copy = _copy(run, tmp_path)
    metadata = copy / "export" / "tiny_test_explainable" / "1" / "assets.extra" / "tfsal.json"
    record = json.loads(metadata.read_text())
    record["tfsal_version"] = "0.0.1"
    metadata.write_text(json.dumps(record))
    assert run_report.main([str(copy)]) == 2
    line = error_line(capsys)
    assert "made by tfsal 0.0.1" in line and tfsal.__version__ in line


@pytest.mark.slow
def test_a_missing_or_unreadable_checkpoint_is_one_clear_line(run, tmp_path, capsys):
    copy = _copy(run, tmp_path)
    for checkpoint in (copy / "checkpoints").iterdir():
        checkpoint.write_bytes(b"not a checkpoint")
    assert run_report.main([str(copy)]) == 2
    assert "corrupt or unreadable" in error_line(capsys)
    shutil.rmtree(copy / "checkpoints")
    (copy / "checkpoints").mkdir()
    assert run_report.main([str(copy)]) == 2
    assert "holds no checkpoint" in error_line(capsys)
    # The old report is still whole.
    assert (copy / "report" / "index.html").is_file()


def test_a_folder_that_is_not_a_run_is_refused(tmp_path, capsys):
    assert run_report.main([str(tmp_path)]) == 2
    assert "not a training.fit run folder" in error_line(capsys)


@pytest.fixture(scope="module")
def decoder_run(tiny_run):
    """A run whose explainable model has the ``decoder`` readout (the job wrote its page)."""
    return tiny_run("--set", "derive.readout=decoder")


@pytest.mark.slow
def test_a_decoder_readout_gets_every_aspect_and_says_what_does_not_apply(decoder_run):
    report = decoder_run / "report"
    page = (report / "index.html").read_text()
    for heading in ("fidelity to the deep model", "1. Activation maps", "2. Which filters"):
        assert heading in page
    for heading in ("3. Positional", "4. Colour processing", "Contribution maps"):
        assert heading in page
    assert page.count("is not a sum of per-group terms") == 3  # importance, prior, maps
    assert "--readout linear" in page and "group-picker" not in page
    for source in re.findall(r'src="([^"]+)"', page):
        assert (report / source).stat().st_size > 0, source
    assert not list(report.glob("contributions*.png")) and not list(report.glob("group-*.png"))
    record = json.loads((report / "report.json").read_text())
    numbers, plotted = record["numbers"], record["plotted"]
    assert numbers["readout"] == "decoder" and numbers["fidelity"]["readout"] == "decoder"
    assert numbers["saliency_cc_drop"] is None and numbers["centre_bias"]["saliency"] is None
    assert record["groups"] == {} and plotted["contributions"] == []
    for aspect, entry in plotted["importance"].items():
        assert entry["saliency_cc_drop"] is None
        for index, label in enumerate(entry["labels"]):
            measured = numbers["importance"]["encoder"][aspect][label]
            assert entry["weight_share"]["encoder"][index] == measured["weight_share"]
    assert sum(plotted["importance"]["colour"]["weight_share"]["encoder"]) == pytest.approx(1.0)


@pytest.mark.slow
def test_the_decoder_readout_page_renders_in_a_browser_without_errors(decoder_run):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    result = browser_check(decoder_run / "report")
    assert result["problems"] == []
    assert result["images"] >= 3 * 2 + 3  # samples, reconstructions, importance, bias, colour


@pytest.mark.slow
def test_an_unreadable_explainable_model_or_record_is_one_clear_line(run, tmp_path, capsys):
    copy = _copy(run, tmp_path)
    version = copy / "export" / "tiny_test_explainable" / "1"
    (version / "model.keras").write_bytes(b"not a zip file")
    assert run_report.main([str(copy)]) == 2
    line = error_line(capsys)
    assert "model.keras cannot be read" in line and f"python -m training.derive {copy}" in line
    (version / "assets.extra" / "tfsal.json").unlink()
    assert run_report.main([str(copy)]) == 2
    assert "tfsal.json is missing or unreadable" in error_line(capsys)
    shutil.copytree(run / "export", copy / "export", dirs_exist_ok=True)
    (copy / "derivation.json").write_text("{truncated")
    assert run_report.main([str(copy)]) == 2
    assert "derivation.json is missing or unreadable" in error_line(capsys)


@pytest.mark.slow
def test_a_report_that_fails_half_way_leaves_the_old_one_whole(run, tmp_path, monkeypatch):
    from tfsal.explain import report_figures

    copy = _copy(run, tmp_path)
    before = sorted(p.name for p in (copy / "report").iterdir())

    def fail_after_the_first_figures(folder, analysis, **kwargs):
        report_figures.importance_figure(
            Path(folder) / "importance.png",
            analysis.numbers["importance"],
            analysis.numbers["saliency_cc_drop"],
        )
        raise RuntimeError("disk full")

    monkeypatch.setattr(report_figures, "render_figures", fail_after_the_first_figures)
    with pytest.raises(RuntimeError, match="disk full"):
        run_report.main([str(copy)])
    assert sorted(p.name for p in (copy / "report").iterdir()) == before
    assert [p.name for p in copy.iterdir() if p.name.startswith(".")] == []
