"""training.report_page: the run report's metrics table and pictures."""

import re

import numpy as np

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
    rng = np.random.default_rng(0)
    sample = {
        "image_id": "x",
        "image": rng.uniform(0, 255, (8, 8, 3)),
        "saliency": rng.uniform(size=(8, 8)),
        "density": rng.uniform(size=(8, 8)),
    }
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
