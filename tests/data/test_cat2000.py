import numpy as np
import pytest

from tests.data.conftest import random_image, write_cat2000
from tfsal import data

ENTRIES = {
    "Action/001": (random_image(18, 32, 0), [(2, 3), (10, 20)]),
    "Action/002": (random_image(18, 32, 1), [(5, 5)]),
    "Sketch/001": (random_image(18, 32, 2), [(17, 31)]),
}


@pytest.fixture
def tiny_cat(tmp_path):
    root = write_cat2000(tmp_path / "CAT2000" / "trainSet", ENTRIES)
    (root / "Stimuli" / "Output").mkdir()
    return root


def test_reads_fixlocs_and_maps_per_category(tiny_cat):
    dataset = data.open_dataset(f"cat2000:{tiny_cat.parent}")  # the folder above trainSet
    assert dataset.ids() == ["Action/001", "Action/002", "Sketch/001"] and dataset.has_density
    record = dataset.load("Action/001")
    np.testing.assert_array_equal(record.fixations, [[2, 3], [10, 20]])
    np.testing.assert_allclose(record.density.sum(), 1.0, rtol=1e-5)
    assert data.open_dataset(f"cat2000:{tiny_cat}", categories=("Sketch",)).ids() == ["Sketch/001"]
    with pytest.raises(ValueError, match="categories \\['Nature'\\] are not in"):
        data.open_dataset(f"cat2000:{tiny_cat}", categories=("Nature",))


def test_missing_fixlocs_raises_or_skips(tiny_cat, caplog):
    (tiny_cat / "FIXATIONLOCS" / "Action" / "002.mat").unlink()
    with pytest.raises(FileNotFoundError, match="1 stimuli lack FIXATIONMAPS/FIXATIONLOCS"):
        data.open_dataset(f"cat2000:{tiny_cat}")
    dataset = data.open_dataset(f"cat2000:{tiny_cat}", missing="skip")
    assert "Action/002" not in dataset.ids() and "skipped 1 stimuli" in caplog.text


def test_fixlocs_without_fixations_or_variable_raise(tiny_cat):
    import scipy.io

    mat = tiny_cat / "FIXATIONLOCS" / "Action" / "001.mat"
    scipy.io.savemat(mat, {"fixLocs": np.zeros((18, 32), np.uint8)})
    with pytest.raises(ValueError, match="001.mat marks no fixation"):
        data.open_dataset(f"cat2000:{tiny_cat}").load("Action/001")
    scipy.io.savemat(mat, {"other": np.zeros((18, 32), np.uint8)})
    with pytest.raises(ValueError, match="must hold a binary map 'fixLocs'"):
        data.open_dataset(f"cat2000:{tiny_cat}").load("Action/001")


def test_missing_folders_raise(tmp_path):
    (tmp_path / "c" / "Stimuli").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="FIXATIONMAPS"):
        data.open_dataset(f"cat2000:{tmp_path / 'c'}")


def test_corrupt_fixlocs_raises_naming_the_file(tiny_cat):
    mat = tiny_cat / "FIXATIONLOCS" / "Action" / "001.mat"
    mat.write_bytes(mat.read_bytes()[:200])  # truncated
    with pytest.raises(ValueError, match="001.mat is not a readable MATLAB file"):
        data.open_dataset(f"cat2000:{tiny_cat}").load("Action/001")
