import numpy as np
import pytest

from tests.data.conftest import random_image, write_folder, write_gray
from tfsal import data


def test_reads_csv_fixations_with_observers(tiny_folder):
    dataset = data.open_dataset(f"folder:{tiny_folder}")
    assert dataset.ids() == ["cat", "dog", "eel"]
    assert dataset.has_fixations and not dataset.has_density
    record = dataset.load("cat")
    np.testing.assert_allclose(record.fixations, [[1, 2], [10.5, 20], [17, 25]])
    np.testing.assert_array_equal(record.observers, [0, 1, 1])
    assert record.density is None


def test_reads_npy_fixations_and_maps(tmp_path):
    root = write_folder(
        tmp_path / "f",
        {"a": (random_image(10, 12), [(1, 1), (9, 11)])},
        with_maps=True,
        fixation_format="npy",
    )
    dataset = data.open_dataset(f"folder:{root}")
    assert dataset.has_density
    record = dataset.load("a")
    np.testing.assert_allclose(record.fixations, [[1, 1], [9, 11]])
    assert record.observers is None
    np.testing.assert_allclose(record.density[:5].sum(), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(record.density[5:], 0)


def test_a_map_of_another_size_than_its_image_is_refused(tmp_path):
    root = write_folder(tmp_path / "f", {"a": (random_image(10, 12), [(1, 1)])}, with_maps=True)
    write_gray(root / "maps" / "a.png", np.full((10, 11), 200, np.uint8))
    with pytest.raises(ValueError, match=r"a\.png is 10x11 but its image .*a\.png is 10x12"):
        data.open_dataset(f"folder:{root}").load("a")


def test_images_only_folder_has_no_targets(tmp_path):
    root = write_folder(tmp_path / "f", {"a": (random_image(6, 6), None)})
    dataset = data.open_dataset(f"folder:{root}")
    assert not dataset.has_fixations and dataset.load("a").fixations.shape == (0, 2)


def test_missing_fixation_file_raises_or_skips(tiny_folder, caplog):
    (tiny_folder / "fixations" / "dog.csv").unlink()
    with pytest.raises(FileNotFoundError, match="1 images have no file in maps/ or fixations/"):
        data.open_dataset(f"folder:{tiny_folder}")
    dataset = data.open_dataset(f"folder:{tiny_folder}", missing="skip")
    assert dataset.ids() == ["cat", "eel"] and "skipped 1 images" in caplog.text


@pytest.mark.parametrize(
    "text, message",
    [
        ("row,col\n1,nan\n", "1 of 1 fixations are NaN"),
        ("row,col\n1,100\n", "outside the 18x26 image"),
        ("row,col\n1,x\n", "line 2: expected numbers"),
        ("1,2\n1,2,3\n", "different numbers of columns"),
        ("1,2,3,4\n", "must have 2 columns"),
        ("row,col\n", "holds no fixation"),
    ],
)
def test_bad_fixation_files_raise(tiny_folder, text, message):
    (tiny_folder / "fixations" / "cat.csv").write_text(text)
    with pytest.raises(ValueError, match=message):
        data.open_dataset(f"folder:{tiny_folder}").load("cat")


@pytest.mark.parametrize(
    "text, message",
    [
        ("1;2\n3,4\n", "line 1: expected numbers"),  # a malformed first line, no header
        ("12,abc\n3,4\n", "line 1: expected numbers"),
        ("1,2,0.5\n", "observer ids are not whole numbers"),
        ("1,2,1e12\n", "observer ids are not whole numbers"),
        ("1,2,-1\n", "observer ids are not whole numbers"),
    ],
)
def test_malformed_lines_and_observer_ids_raise(tiny_folder, text, message):
    (tiny_folder / "fixations" / "cat.csv").write_text(text)
    with pytest.raises(ValueError, match=message):
        data.open_dataset(f"folder:{tiny_folder}").load("cat")


def test_header_of_column_names_is_skipped(tiny_folder):
    (tiny_folder / "fixations" / "cat.csv").write_text("y, x, subject_id\n1,2,0\n3,4,7\n")
    record = data.open_dataset(f"folder:{tiny_folder}").load("cat")
    np.testing.assert_array_equal(record.fixations, [[1, 2], [3, 4]])
    np.testing.assert_array_equal(record.observers, [0, 7])


@pytest.mark.parametrize(
    "content",
    [b"root:x:0:0:SECRET-LINE\n", b"1,2\nSECRET-LINE,3\n", b"\x00SECRET-LINE\xff\xfe"],
)
def test_errors_never_echo_the_file_content(tiny_folder, content):
    (tiny_folder / "fixations" / "cat.csv").write_bytes(content)
    with pytest.raises(ValueError, match=r"cat\.csv") as raised:
        data.open_dataset(f"folder:{tiny_folder}").load("cat")
    assert "SECRET" not in str(raised.value)


def test_npy_of_text_is_refused_without_echo(tiny_folder):
    (tiny_folder / "fixations" / "cat.csv").unlink()
    np.save(tiny_folder / "fixations" / "cat.npy", np.array([["SECRET", "1"]]))
    with pytest.raises(ValueError, match="fixations must be numbers") as raised:
        data.open_dataset(f"folder:{tiny_folder}").load("cat")
    assert "SECRET" not in str(raised.value)


def test_unreadable_image_raises_naming_it(tiny_folder):
    (tiny_folder / "images" / "eel.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(ValueError, match="eel.png: truncated PNG"):
        data.open_dataset(f"folder:{tiny_folder}").load("eel")


def test_missing_images_folder_raises(tmp_path):
    (tmp_path / "f").mkdir()
    with pytest.raises(FileNotFoundError, match="images/"):
        data.open_dataset(f"folder:{tmp_path / 'f'}")


def test_grayscale_rgba_and_sixteen_bit_images_become_rgb_uint8(tiny_folder):
    import cv2

    folder = tiny_folder / "images"
    cv2.imwrite(str(folder / "cat.png"), np.full((18, 26), 77, np.uint8))
    cv2.imwrite(str(folder / "dog.png"), np.full((30, 12, 4), 50, np.uint8))
    cv2.imwrite(str(folder / "eel.png"), np.full((16, 16, 3), 257 * 9, np.uint16))
    dataset = data.open_dataset(f"folder:{tiny_folder}")
    expected = {"cat": (18, 26, 77), "dog": (30, 12, 50), "eel": (16, 16, 9)}
    for image_id, (height, width, value) in expected.items():
        image = dataset.load(image_id).image
        assert image.shape == (height, width, 3) and image.dtype == np.uint8
        assert (image == value).all()


def test_upper_case_npy_suffix_is_read_as_numpy(tmp_path):
    root = write_folder(
        tmp_path / "f", {"a": (random_image(10, 12), [(1, 1), (9, 11)])}, fixation_format="npy"
    )
    (root / "fixations" / "a.npy").rename(root / "fixations" / "a.NPY")
    np.testing.assert_allclose(
        data.open_dataset(f"folder:{root}").load("a").fixations, [[1, 1], [9, 11]]
    )


@pytest.mark.parametrize("extra", ["images/cat.jpg", "fixations/cat.npy", "maps/cat.jpg"])
def test_two_files_with_one_stem_are_refused(tiny_folder, extra):
    (tiny_folder / "maps").mkdir()
    for stem in ("cat", "dog", "eel"):
        (tiny_folder / "maps" / f"{stem}.png").write_bytes(
            (tiny_folder / "images" / f"{stem}.png").read_bytes()
        )
    data.open_dataset(f"folder:{tiny_folder}")  # one file per stem: fine
    source = {"images": "images/cat.png", "fixations": "fixations/cat.csv", "maps": "maps/cat.png"}
    (tiny_folder / extra).write_bytes((tiny_folder / source[extra.split("/")[0]]).read_bytes())
    with pytest.raises(ValueError, match="share the stem 'cat'"):
        data.open_dataset(f"folder:{tiny_folder}")


@pytest.mark.parametrize(
    "contents", [b"", b"\x93NUMPY garbage", None], ids=["empty", "garbage", "text-array"]
)
def test_unreadable_npy_fixations_raise_naming_the_file(tmp_path, contents):
    root = write_folder(
        tmp_path / "f", {"a": (random_image(10, 12), [(1, 1)])}, fixation_format="npy"
    )
    path = root / "fixations" / "a.npy"
    if contents is None:
        np.save(path, np.array([["1", "x"]]))
    else:
        path.write_bytes(contents)
    with pytest.raises(ValueError, match="a.npy: "):
        data.open_dataset(f"folder:{root}").load("a")
