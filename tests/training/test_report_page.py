"""training.report_page: the run report's metrics table and pictures."""

import re

import numpy as np
from PIL import Image

from tfsal import metrics
from tfsal.metrics import LOWER_IS_BETTER
from training import report_page


def test_best_value_is_the_lowest_for_lower_is_better_metrics(tmp_path):
    assert {"KLD", "MSR_bg", "numfix2find"} <= LOWER_IS_BETTER
    metrics = {
        "dataset": "popout",
        "n_images": 2,
        "results": {
            "a": {"CC": 0.5, "KLD": 1.0, "numfix2find": 4.0, "GSI": 0.2},
            "b": {"CC": 0.4, "KLD": 2.0, "numfix2find": 1.0, "GSI": 0.3},
        },
    }
    sample = _sample(np.random.default_rng(0))
    index = report_page.write_report(tmp_path, "t", metrics, [sample], {"out": tmp_path})
    page = index.read_text()
    bold = re.findall(r"<b>([0-9.]+)</b>", page)
    assert bold == ["0.500", "1.000", "1.000", "0.300"]  # a's CC, KLD; b's numfix2find, GSI
    assert sorted(p.name for p in tmp_path.glob("*.png")) == [
        "colour-bar.png",
        "sample-00-image.png",
        "sample-00-model.png",
        "sample-00-truth.png",
    ]
    assert f'src="{report_page.COLOUR_BAR}"' in page  # the overlays' colour map, once


def _sample(rng, **extra):
    return {
        "image_id": "x",
        "image": rng.uniform(0, 255, (16, 16, 3)),
        "saliency": rng.uniform(size=(16, 16)),
        "density": rng.uniform(size=(16, 16)),
        **extra,
    }


def test_samples_show_both_models_with_their_scores_and_the_fixations(tmp_path):
    rng = np.random.default_rng(1)
    fixations = np.zeros((16, 16))
    fixations[4, 5] = fixations[10, 12] = 1
    sample = _sample(rng, explainable=rng.uniform(size=(16, 16)), fixations=fixations)
    page = report_page.write_report(tmp_path, "t", {}, [sample], {}).read_text()
    assert (tmp_path / "sample-00-explainable.png").is_file()
    for kind, label in (("saliency", "deep model"), ("explainable", "explainable model")):
        cc = metrics.cc(sample[kind], sample["density"])
        nss = metrics.nss(sample[kind], fixations)
        assert f"{label}: CC {cc:.2f}, NSS {nss:.2f}" in page
    truth = np.asarray(Image.open(tmp_path / "sample-00-truth.png"))
    assert (truth[4, 5] == 255).all() and (truth[10, 12] == 255).all()  # the fixations
    assert (truth[5, 5] == 0).all()  # ringed in black


def test_a_page_marked_out_of_date_says_so_at_the_top(tmp_path):
    rng = np.random.default_rng(2)
    assert not report_page.mark_stale(tmp_path, "old")  # no page yet: nothing to mark
    index = report_page.write_report(tmp_path, "t", {}, [_sample(rng)], {})
    before = index.read_text()
    assert 'id="stale"' not in before
    assert report_page.mark_stale(tmp_path, "derived again")
    after = index.read_text()
    assert after.index('id="stale"') < after.index("<h1>")
    assert after.replace('<p class="stale" id="stale">derived again</p>', "") == before


def test_the_border_score_is_explained_only_where_it_is_shown(tmp_path):
    sample = _sample(np.random.default_rng(0))
    pages = {}
    for name, row in (("with", {"CC": 0.5, "border": 0.4}), ("without", {"CC": 0.5})):
        metrics = {"dataset": "popout", "n_images": 1, "results": {"a": row}}
        out = tmp_path / name
        out.mkdir()
        pages[name] = report_page.write_report(out, "t", metrics, [sample], {}).read_text()
    assert "frame drawn along the image border" in pages["with"]
    assert "frame drawn" not in pages["without"]
