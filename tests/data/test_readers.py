import cv2
import numpy as np
import pytest

from tfsal import data
from tfsal.data import readers
from tfsal.data.readers import SaliencyDataset, register_reader
from tfsal.data.record import SaliencyRecord


def test_all_issue_formats_are_registered():
    assert {"nus", "mit1003", "salicon", "cat2000", "folder"} <= set(data.list_formats())


def test_unknown_format_lists_the_known_ones():
    with pytest.raises(
        ValueError, match="Unknown data set format 'imagenet'.*Known formats: .*nus"
    ):
        data.open_dataset("imagenet:/tmp")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("nus", "needs a path"),
        ("nus:", "path after 'nus:' is empty"),
        ("", "spec"),
        ("popout:/some/path", "'popout' is generated and takes no path"),
    ],
)
def test_bad_specs_raise(spec, message):
    with pytest.raises(ValueError, match=message):
        data.open_dataset(spec)


@pytest.mark.parametrize("fmt", ["nus", "mit1003", "salicon", "cat2000", "folder"])
def test_missing_folder_raises(fmt, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.open_dataset(f"{fmt}:{tmp_path / 'nowhere'}")


def test_registered_reader_without_path_and_iteration(monkeypatch):
    monkeypatch.setattr(readers, "_READERS", dict(readers._READERS))

    @register_reader("tiny_generated")
    class Generated(SaliencyDataset):
        requires_path = False

        def ids(self):
            return ["0", "1"]

        def load(self, image_id):
            return SaliencyRecord(image_id, np.zeros((2, 2, 3), np.uint8), [[1, 1]])

    dataset = data.open_dataset("tiny_generated")
    assert isinstance(dataset, Generated) and dataset.name == "tiny_generated"
    assert len(dataset) == 2 and [r.image_id for r in dataset] == ["0", "1"]
    assert "tiny_generated" in repr(dataset)
    with pytest.raises(ValueError, match="invalid_fixations"):
        Generated(invalid_fixations="keep")
    with pytest.raises(ValueError, match="already registered"):
        register_reader("nus")(Generated)


def test_only_generated_data_sets_have_stimuli(tmp_path):
    popout = data.open_dataset("popout", num_images=2, image_size=64)
    stimulus = popout.stimulus("popout-0001")
    assert stimulus.target_mask.shape == (64, 64) and stimulus.target_mask.any()
    (tmp_path / "images").mkdir()
    (tmp_path / "maps").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), np.zeros((8, 8, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "maps" / "a.png"), np.full((8, 8), 255, np.uint8))
    assert data.open_dataset(f"folder:{tmp_path}").stimulus("a") is None
