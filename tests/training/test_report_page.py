import re

import numpy as np

from training import report_page

METRICS = {
    "dataset": "popout",
    "n_images": 2,
    "results": {
        "cmrnet": {"CC": 0.9, "KLD": 0.5, "MSR_bg": 0.4, "numfix2find": 1.5},
        "baseline:centre-bias": {"CC": 0.0, "KLD": 4.9, "MSR_bg": 4.6, "numfix2find": 89.0},
        "baseline:spectral-residual": {"CC": 0.1, "KLD": 4.4, "MSR_bg": 1.0, "numfix2find": 36.0},
    },
}


def _bold_cells(page: str) -> dict[str, list[str]]:
    """Model row -> the bold values in it."""
    rows = re.findall(r"<tr><th>([^<]+)</th>(.*?)</tr>", page)
    return {name: re.findall(r"<b>([^<]+)</b>", cells) for name, cells in rows if name != "model"}


def test_the_best_value_is_the_lowest_for_kld_msr_bg_and_fixations_to_find(tmp_path):
    page = report_page.write_report(tmp_path, "run", METRICS, [], {}).read_text()
    # Every column's best is the model's: highest CC, lowest KLD, MSR_bg, numfix2find.
    assert _bold_cells(page) == {
        "cmrnet": ["0.900", "0.500", "0.400", "1.500"],
        "baseline:centre-bias": [],
        "baseline:spectral-residual": [],
    }
    assert "KLD, MSR_bg, numfix2find: lowest" in page


def test_samples_are_written_as_overlay_pictures(tmp_path):
    image = np.full((8, 8, 3), 128, np.uint8)
    saliency = np.zeros((8, 8))
    saliency[2, 3] = 1.0
    sample = {"image_id": "popout-0000", "image": image, "saliency": saliency, "density": saliency}
    page = report_page.write_report(tmp_path, "run", METRICS, [sample], {}).read_text()
    assert 'src="sample-00-model.png"' in page
    assert (tmp_path / "sample-00-model.png").stat().st_size > 0
