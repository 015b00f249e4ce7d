import json

import numpy as np
import pytest

from tests.data.conftest import random_image, write_salicon_2015, write_salicon_2017
from tfsal import data


@pytest.fixture
def salicon_2017(tmp_path):
    root = tmp_path / "salicon"
    write_salicon_2017(
        root,
        {
            "COCO_train2014_000000000009": (
                random_image(24, 32, 0),
                [[(1, 1), (32, 24)], [], [(10, 5)]],
            )
        },
    )
    write_salicon_2017(
        root, {"COCO_val2014_000000000042": (random_image(24, 32, 1), [[(16, 12)]])}, split="val"
    )
    (root / "images" / "test").mkdir()
    return root


def test_2017_reads_xy_as_zero_based_row_col_per_observer(salicon_2017):
    dataset = data.open_dataset(f"salicon:{salicon_2017}")
    assert dataset.ids() == ["COCO_train2014_000000000009", "COCO_val2014_000000000042"]
    assert dataset.has_density
    record = dataset.load("COCO_train2014_000000000009")
    np.testing.assert_allclose(record.fixations, [[0, 0], [23, 31], [4, 9]])
    np.testing.assert_array_equal(record.observers, [0, 0, 2])
    np.testing.assert_allclose(record.density.sum(), 1.0, rtol=1e-5)


def test_2017_split_selection_and_optional_maps(tmp_path):
    root = write_salicon_2017(
        tmp_path / "s", {"COCO_val2014_1": (random_image(8, 8), [[(2, 2)]])}, "val", maps=False
    )
    dataset = data.open_dataset(f"salicon:{root}", splits=("val",))
    assert not dataset.has_density and dataset.load("COCO_val2014_1").density is None
    with pytest.raises(FileNotFoundError, match="no .mat fixation files"):
        data.open_dataset(f"salicon:{root}", splits=("train",))


def test_2017_out_of_range_fixation_raises(tmp_path):
    root = write_salicon_2017(tmp_path / "s", {"C_1": (random_image(8, 8), [[(2, 2), (40, 2)]])})
    with pytest.raises(ValueError, match="C_1.mat: 1 of 2 fixations"):
        data.open_dataset(f"salicon:{root}").load("C_1")


def test_2017_file_without_gaze_raises(tmp_path):
    import scipy.io

    root = write_salicon_2017(tmp_path / "s", {"C_1": (random_image(8, 8), [[(2, 2)]])})
    scipy.io.savemat(root / "fixations" / "train" / "C_1.mat", {"image": "C_1"})
    with pytest.raises(ValueError, match="not a 2017 fixation file"):
        data.open_dataset(f"salicon:{root}").load("C_1")


def test_2015_json_reads_row_col_per_worker(tmp_path):
    root = write_salicon_2015(
        tmp_path / "s15",
        {
            "COCO_train2014_1": (random_image(20, 30, 0), {7: [[1, 1], [20, 30]], 9: [[5, 10]]}),
            "COCO_train2014_2": (random_image(10, 10, 1), {7: [[3, 4]]}),
        },
    )
    dataset = data.open_dataset(f"salicon:{root}", release="2015", splits=("train",))
    assert dataset.ids() == ["COCO_train2014_1", "COCO_train2014_2"] and not dataset.has_density
    record = dataset.load("COCO_train2014_1")
    np.testing.assert_allclose(record.fixations, [[0, 0], [19, 29], [4, 9]])
    np.testing.assert_array_equal(record.observers, [7, 7, 9])


def test_2015_bad_json_and_missing_images_raise(tmp_path):
    root = write_salicon_2015(tmp_path / "s", {"C_1": (random_image(8, 8), {1: [[2, 2]]})})
    (root / "images" / "train" / "C_1.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="1 images with fixations are missing"):
        data.open_dataset(f"salicon:{root}", release="2015")
    (root / "fixations_train2014.json").write_text(json.dumps({"images": [{"id": 1}]}))
    with pytest.raises(ValueError, match="not a COCO-style fixation file"):
        data.open_dataset(f"salicon:{root}", release="2015")
    with pytest.raises(ValueError, match="release must be one of"):
        data.open_dataset(f"salicon:{root}", release="2016")


def test_2017_empty_mat_file_raises_naming_it(tmp_path):
    root = write_salicon_2017(tmp_path / "s", {"C_1": (random_image(8, 8), [[(2, 2)]])})
    (root / "fixations" / "train" / "C_1.mat").write_bytes(b"")
    with pytest.raises(ValueError, match="C_1.mat is not a readable MATLAB file"):
        data.open_dataset(f"salicon:{root}").load("C_1")


def test_2015_truncated_json_raises_naming_it(tmp_path):
    root = write_salicon_2015(tmp_path / "s", {"C_1": (random_image(8, 8), {1: [[2, 2]]})})
    path = root / "fixations_train2014.json"
    path.write_text(path.read_text()[:-10])
    with pytest.raises(ValueError, match="fixations_train2014.json is not a readable JSON file"):
        data.open_dataset(f"salicon:{root}", release="2015")


def _rewrite_annotations(root, change):
    path = root / "fixations_train2014.json"
    contents = json.loads(path.read_text())
    for annotation in contents["annotations"]:
        change(annotation)
    path.write_text(json.dumps(contents))


def test_2015_observer_ids_are_checked_or_unknown(tmp_path):
    root = write_salicon_2015(tmp_path / "s", {"C_1": (random_image(8, 8), {1: [[2, 2]]})})
    _rewrite_annotations(root, lambda annotation: annotation.update(worker_id=0.5))
    dataset = data.open_dataset(f"salicon:{root}", release="2015")
    with pytest.raises(ValueError, match="C_1: 1 of 1 observer ids are not whole numbers"):
        dataset.load("C_1")
    _rewrite_annotations(root, lambda annotation: annotation.pop("worker_id"))
    record = data.open_dataset(f"salicon:{root}", release="2015").load("C_1")
    assert record.observers is None and len(record.fixations) == 1


def test_2015_malformed_fixations_are_not_echoed(tmp_path):
    root = write_salicon_2015(tmp_path / "s", {"C_1": (random_image(8, 8), {1: [[2, 2]]})})
    _rewrite_annotations(root, lambda annotation: annotation.update(fixations=[["SECRET", 1]]))
    with pytest.raises(ValueError, match="not a COCO-style fixation file") as raised:
        data.open_dataset(f"salicon:{root}", release="2015")
    assert "SECRET" not in str(raised.value)
