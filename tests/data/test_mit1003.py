import logging

import numpy as np
import pytest

from tests.data.conftest import write_mit1003
from tfsal import data


def test_reads_nested_layout_points_and_maps(tiny_mit, caplog):
    with caplog.at_level(logging.INFO):
        dataset = data.open_dataset(f"mit1003:{tiny_mit}")
    assert "known stray file" in caplog.text
    assert dataset.ids() == ["a_img", "b_img"] and dataset.has_density
    record = dataset.load("a_img")
    assert record.image.shape == (32, 40, 3)
    np.testing.assert_array_equal(record.fixations, [[5, 5], [20, 30]])
    assert record.observers is None
    np.testing.assert_allclose(record.density.sum(), 1.0, rtol=1e-5)
    assert record.density[5, 5] > record.density[0, 39]


def test_flat_layout_also_works(tmp_path):
    root = write_mit1003(tmp_path / "m", [("x", (16, 16), [(3, 3)])], nested=False, stray=False)
    assert data.open_dataset(f"mit1003:{root}").ids() == ["x"]


def test_stimulus_without_fixation_maps_raises_or_is_skipped(tiny_mit, caplog):
    (tiny_mit / "ALLFIXATIONMAPS" / "b_img_fixPts.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="1 stimuli have no <stem>_fixPts.*missing='skip'"):
        data.open_dataset(f"mit1003:{tiny_mit}")
    dataset = data.open_dataset(f"mit1003:{tiny_mit}", missing="skip")
    assert dataset.ids() == ["a_img"]
    assert "skipped 1 stimuli without fixation maps" in caplog.text


def test_missing_subfolder_and_bad_policy_raise(tmp_path, tiny_mit):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no ALLSTIMULI folder"):
        data.open_dataset(f"mit1003:{tmp_path / 'empty'}")
    with pytest.raises(ValueError, match="missing must be one of"):
        data.open_dataset(f"mit1003:{tiny_mit}", missing="ignore")


def test_map_of_the_wrong_size_raises(tiny_mit):
    import cv2

    cv2.imwrite(str(tiny_mit / "ALLFIXATIONMAPS" / "a_img_fixMap.jpg"), np.ones((8, 8), np.uint8))
    with pytest.raises(ValueError, match="a_img_fixMap.jpg is 8x8 but its image"):
        data.open_dataset(f"mit1003:{tiny_mit}").load("a_img")
