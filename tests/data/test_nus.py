import numpy as np
import pytest
import scipy.io

from tests.data.conftest import random_image, write_nus
from tfsal import data


def test_real_nus_has_400_images_and_34982_fixations_inside_them(nus_dir):
    dataset = data.open_dataset(f"nus:{nus_dir}")
    assert len(dataset) == 400
    total = 0
    for record in dataset:
        height, width = record.shape
        rows, cols = record.fixations[:, 0], record.fixations[:, 1]
        assert rows.min() >= 0 and rows.max() <= height - 1, record.image_id
        assert cols.min() >= 0 and cols.max() <= width - 1, record.image_id
        assert record.observers is not None and record.observers.max() < 12
        assert record.density is None
        total += len(record.fixations)
    assert total == 34982


def test_real_nus_fixations_are_shifted_from_matlab(nus_dir):
    dataset = data.open_dataset(f"nus:{nus_dir}")
    raw = scipy.io.loadmat(nus_dir / "fixations.mat")["fixations"]
    record = dataset.load("001")
    first_observer = raw[0, np.nonzero([cell.size for cell in raw[0]])[0][0]]
    np.testing.assert_allclose(record.fixations[: len(first_observer)], first_observer[:, :2] - 1)


def test_tiny_nus_converts_to_zero_based_and_keeps_observers(tiny_nus):
    dataset = data.open_dataset(f"nus:{tiny_nus}")
    assert dataset.ids() == ["001", "003"] and dataset.has_fixations and not dataset.has_density
    first = dataset.load("001")
    np.testing.assert_allclose(first.fixations, [[0, 0], [19, 29], [9.5, 14.25]])
    np.testing.assert_array_equal(first.observers, [0, 0, 1])
    second = dataset.load("003")
    # (0.5, 0.6) lies before the first pixel centre in MATLAB terms: clamped onto it.
    np.testing.assert_allclose(second.fixations, [[4, 5], [23, 15], [0, 0]])
    with pytest.raises(KeyError, match="'002' is not an image of the nus data set"):
        dataset.load("002")


def test_out_of_range_and_nan_fixations_raise_or_drop(tmp_path, caplog):
    root = write_nus(
        tmp_path / "nus",
        {1: (random_image(10, 10), [[(5, 5), (30, 5)], [(np.nan, 2)]])},
    )
    with pytest.raises(ValueError, match="NUS image 001: 2 of 3 fixations"):
        data.open_dataset(f"nus:{root}").load("001")
    record = data.open_dataset(f"nus:{root}", invalid_fixations="drop").load("001")
    np.testing.assert_allclose(record.fixations, [[4, 4]])
    assert "dropped 2 of 3" in caplog.text


def test_image_without_fixations_raises(tmp_path):
    root = write_nus(
        tmp_path / "nus",
        {1: (random_image(10, 10), [[(5, 5)]]), 2: (random_image(8, 8), [[]])},
    )
    dataset = data.open_dataset(f"nus:{root}")
    with pytest.raises(ValueError, match="image 002 .* has no fixations"):
        dataset.load("002")


def test_missing_mat_and_size_mismatch_raise(tmp_path, tiny_nus):
    (tiny_nus / "imgInfo.mat").rename(tmp_path / "kept.mat")
    assert len(data.open_dataset(f"nus:{tiny_nus}")) == 2  # imgInfo.mat is optional
    (tiny_nus / "fixations.mat").unlink()
    with pytest.raises(FileNotFoundError, match="fixations.mat not found"):
        data.open_dataset(f"nus:{tiny_nus}")


def test_image_size_disagreeing_with_imginfo_raises(tmp_path):
    root = write_nus(tmp_path / "nus", {1: (random_image(10, 12), [[(5, 5)]])})
    info = np.zeros((1, 1), dtype=[("size", object)])
    info[0, 0]["size"] = np.array([[11, 12]], np.uint16)
    scipy.io.savemat(root / "imgInfo.mat", {"imgInfo": info})
    with pytest.raises(ValueError, match="is 10x12 but imgInfo.mat says 11x12"):
        data.open_dataset(f"nus:{root}").load("001")


def test_truncated_stimulus_raises_naming_it(tiny_nus):
    path = tiny_nus / "stimuli" / "003.jpg"
    path.write_bytes(path.read_bytes()[:-30])
    with pytest.raises(ValueError, match="003.jpg: truncated JPEG"):
        data.open_dataset(f"nus:{tiny_nus}").load("003")


@pytest.mark.parametrize("contents", [b"", b"not a MATLAB file " * 4])
def test_corrupt_mat_files_raise_naming_them(tiny_nus, contents):
    (tiny_nus / "fixations.mat").write_bytes(contents)
    with pytest.raises(ValueError, match="fixations.mat is not a readable MATLAB file"):
        data.open_dataset(f"nus:{tiny_nus}")
