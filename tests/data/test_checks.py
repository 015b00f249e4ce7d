import numpy as np
import pytest

from tests.data.conftest import random_image, write_folder
from tfsal import data
from tfsal.data.checks import RecordCheckError


def _folder(tmp_path, count=4):
    entries = {f"im{i}": (random_image(12, 16, i), [(2, 3, 0), (5, 9, 1)]) for i in range(count)}
    return write_folder(tmp_path / "f", entries)


def test_a_clean_data_set_passes(tmp_path):
    dataset = data.open_dataset(f"folder:{_folder(tmp_path)}")
    data.check_records(dataset)
    data.check_records(dataset, ["im1", "im2"], image_size=(8, 8), resize="stretch")


def test_truncated_image_and_bad_fixation_are_named(tmp_path):
    root = _folder(tmp_path)
    image = root / "images" / "im1.png"
    image.write_bytes(image.read_bytes()[:-30])
    (root / "fixations" / "im3.csv").write_text("row,col\n2,300\n")
    dataset = data.open_dataset(f"folder:{root}")
    with pytest.raises(RecordCheckError) as raised:
        data.check_records(dataset)
    message = str(raised.value)
    assert message.startswith("2 of 4 images of the folder data set cannot be used")
    assert "'im1': " in message and "im1.png: truncated PNG" in message
    assert "'im3': " in message and "outside the 12x16 image" in message
    data.check_records(dataset, ["im0", "im2"])  # the others are fine


def test_drop_policy_keeps_the_check_quiet(tmp_path):
    root = _folder(tmp_path)
    (root / "fixations" / "im3.csv").write_text("row,col\n2,300\n4,4\n")
    dataset = data.open_dataset(f"folder:{root}", invalid_fixations="drop")
    data.check_records(dataset)
    np.testing.assert_array_equal(dataset.load("im3").fixations, [[4, 4]])


def test_target_at_the_model_size_is_checked(tmp_path):
    root = _folder(tmp_path, count=2)
    dataset = data.open_dataset(f"folder:{root}")
    with pytest.raises(ValueError, match="image_size must be positive"):
        data.check_records(dataset, image_size=(0, 8))
    images_only = write_folder(tmp_path / "bare", {"a": (random_image(6, 6), None)})
    with pytest.raises(RecordCheckError, match="'a': .*neither fixations nor"):
        data.check_records(data.open_dataset(f"folder:{images_only}"), image_size=(8, 8))
    with pytest.raises(RecordCheckError, match="'a': .*neither fixations nor"):
        data.check_records(data.open_dataset(f"folder:{images_only}"))


def test_many_failures_are_counted_and_the_first_listed(tmp_path):
    root = _folder(tmp_path, count=8)
    for path in (root / "images").iterdir():
        path.write_bytes(b"junk")
    with pytest.raises(RecordCheckError, match=r"8 of 8 images(.|\n)*and 3 more"):
        data.check_records(data.open_dataset(f"folder:{root}"))
