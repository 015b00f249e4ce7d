import numpy as np
import pytest

from tfsal import metrics
from tfsal.metrics import popout


def test_a_bright_frame_scores_above_one_and_a_centred_blob_below():
    frame = np.ones((64, 64))
    frame[:2, :] = frame[-2:, :] = frame[:, :2] = frame[:, -2:] = 10.0
    assert popout.border_ratio(frame) > 1.0
    yy, xx = np.mgrid[:64, :64]
    blob = np.exp(-((yy - 32.0) ** 2 + (xx - 32.0) ** 2) / 50.0)
    assert popout.border_ratio(blob) < 0.01
    assert popout.border_ratio(np.full((64, 64), 3.0)) == pytest.approx(1.0)


def test_the_band_is_a_thirty_second_of_the_shorter_side():
    saliency = np.zeros((64, 128))
    saliency[1, 60] = 1.0  # inside a 2-px band
    assert popout.border_ratio(saliency) > 0
    saliency[1, 60], saliency[2, 60] = 0.0, 1.0  # just inside the inner part
    assert popout.border_ratio(saliency) == 0.0
    assert popout.border_ratio(saliency, width=3) > 0


def test_bad_maps_and_bands_get_one_clear_error():
    assert popout.border_ratio(np.zeros((8, 8))) == -1.0
    with pytest.raises(ValueError, match="needs an \\(H, W\\) map"):
        popout.border_ratio(np.ones((8, 8, 3)))
    with pytest.raises(ValueError, match="Received: width=4"):
        popout.border_ratio(np.ones((8, 8)), width=4)


def test_border_is_lower_is_better():
    assert "border" in metrics.LOWER_IS_BETTER
