"""python -m serving.predict: every image of a folder to a map at its own size."""

import cv2
import numpy as np
import pytest

from serving import predict
from serving.loaded_model import load_model
from tests.serving import explained_models
from tfsal.data.images import read_map


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A training.fit-like run folder holding the tiny deep model's export."""
    run = tmp_path_factory.mktemp("run")
    explained_models.export(explained_models.deep_model(), run / "export" / "tiny" / "1")
    return run


@pytest.fixture()
def images(tmp_path):
    """Images of several sizes and layouts, and one broken file."""
    folder = tmp_path / "images"
    folder.mkdir()
    rgb = explained_models.random_image(30, 50, seed=1)
    cv2.imwrite(str(folder / "wide.jpg"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    grey = explained_models.random_image(41, 17, seed=2)[..., 0]
    cv2.imwrite(str(folder / "grey.png"), grey)
    rgba = np.dstack(
        [explained_models.random_image(20, 20, seed=3), np.full((20, 20), 128, np.uint8)]
    )
    cv2.imwrite(str(folder / "rgba.png"), rgba)
    encoded = cv2.imencode(".jpg", rgb)[1].tobytes()
    (folder / "broken.jpg").write_bytes(encoded[: len(encoded) // 2])
    return folder


SIZES = {"wide": (30, 50), "grey": (41, 17), "rgba": (20, 20)}


def test_folder_with_a_broken_file_writes_every_other_map_at_its_own_size(
    run_folder, images, tmp_path, capsys
):
    out = tmp_path / "maps"
    code = predict.main(
        [
            "--model",
            str(run_folder),
            "--images",
            str(images),
            "--out",
            str(out),
            "--batch-size",
            "2",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["grey.png", "rgba.png", "wide.png"]
    for stem, shape in SIZES.items():
        saliency = read_map(out / f"{stem}.png")
        assert saliency.shape == shape
        assert saliency.max() == pytest.approx(1.0) and saliency.min() == pytest.approx(0.0)
    assert "skipped" in captured.err and "broken.jpg" in captured.err
    assert "3 map(s) written" in captured.out and "1 image(s) could not be read" in captured.out


def test_maps_match_per_image_prediction_and_npy_holds_the_density(run_folder, images, tmp_path):
    out = tmp_path / "maps"
    loaded = load_model(run_folder / "export" / "tiny" / "1")
    files = [images / "wide.jpg", images / "rgba.png"]
    summary = predict.predict_images(loaded, files, out, "npy", batch_size=2, progress=False)
    assert summary.written == files and not summary.failed
    from tfsal.data.images import read_image
    from tfsal.data.targets import model_input

    image = read_image(images / "wide.jpg")
    canvas, geometry = model_input(image, loaded.input_size, loaded.resize)
    alone = np.asarray(loaded.model(canvas[None])["saliency"])[0, ..., 0]
    expected = predict.saliency_at_image_size(alone, geometry, image.shape[:2], "log_density")
    density = np.load(out / "wide.npy")
    assert density.shape == (30, 50) and density.dtype == np.float32
    np.testing.assert_allclose(density.sum(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(density, expected, rtol=1e-4, atol=1e-9)


def test_existing_outputs_are_kept_unless_overwrite(run_folder, images, tmp_path, capsys):
    out = tmp_path / "maps"
    out.mkdir()
    (out / "wide.png").write_bytes(b"keep me")
    args = ["--model", str(run_folder), "--images", str(images / "wide.jpg"), "--out", str(out)]
    assert predict.main(args) == 0
    assert (out / "wide.png").read_bytes() == b"keep me"
    assert "pass --overwrite" in capsys.readouterr().out
    assert predict.main([*args, "--overwrite", "--format", "png16"]) == 0
    assert cv2.imread(str(out / "wide.png"), cv2.IMREAD_UNCHANGED).dtype == np.uint16


def test_overlay_is_written_next_to_the_map(run_folder, images, tmp_path):
    out = tmp_path / "maps"
    args = ["--model", str(run_folder), "--images", str(images / "grey.png"), "--out", str(out)]
    assert predict.main([*args, "--overlay"]) == 0
    overlay = cv2.imread(str(out / "grey_overlay.png"))
    assert overlay.shape == (41, 17, 3)


def test_bad_inputs_give_one_clear_error(run_folder, tmp_path, capsys):
    assert predict.main(["--model", str(tmp_path), "--images", str(tmp_path), "--out", "x"]) == 2
    assert "holds no image files" in capsys.readouterr().err
    (tmp_path / "a.jpg").write_bytes(b"")
    (tmp_path / "a.png").write_bytes(b"")
    assert predict.main(["--model", str(run_folder), "--images", str(tmp_path), "--out", "x"]) == 2
    assert "same name" in capsys.readouterr().err
    assert (
        predict.main(["--model", str(tmp_path), "--images", str(tmp_path / "a.jpg"), "--out", "x"])
        == 2
    )
    assert "expected a SavedModel folder" in capsys.readouterr().err


def test_a_saved_model_without_metadata_needs_its_input_size_and_kind(images, tmp_path, capsys):
    folder = tmp_path / "elsewhere"
    explained_models.deep_model().export(str(folder), format="tf_saved_model", verbose=False)
    base = [
        "--model",
        str(folder),
        "--images",
        str(images / "wide.jpg"),
        "--out",
        str(tmp_path / "o"),
    ]
    assert predict.main(base) == 2
    assert "pass --input-size H W and --output-kind" in capsys.readouterr().err
    size = [str(v) for v in explained_models.SIZE]
    assert predict.main([*base, "--input-size", *size, "--output-kind", "log_density"]) == 0
    assert read_map(tmp_path / "o" / "wide.png").shape == (30, 50)


def test_the_explainable_model_of_a_run_predicts_by_name(images, tmp_path):
    run = tmp_path / "run"
    explained_models.export(explained_models.deep_model(), run / "export" / "tiny" / "1")
    explained_models.export(
        explained_models.explainable_model(), run / "export" / "tiny_explainable" / "1"
    )
    out = tmp_path / "maps"
    args = ["--model", str(run), "--images", str(images / "rgba.png"), "--out", str(out)]
    assert predict.main([*args, "--name", "tiny_explainable", "--format", "npy"]) == 0
    explainable = np.load(out / "rgba.npy")
    assert predict.main([*args, "--overwrite", "--format", "npy"]) == 0  # the deep model
    deep = np.load(out / "rgba.npy")
    assert explainable.shape == deep.shape == (20, 20)
    assert not np.allclose(explainable, deep)
    assert predict.main([*args, "--name", "nope"]) == 2


@pytest.mark.parametrize("output_format, top", [("png8", 255), ("png16", 65535)])
def test_png_maps_are_min_max_scaled_and_rounded_to_the_integer_range(output_format, top):
    saliency = np.array([[0.1, 0.2], [0.3, 0.6]], np.float32)
    levels = cv2.imdecode(
        np.frombuffer(predict.encode_map(saliency, output_format), np.uint8), cv2.IMREAD_UNCHANGED
    )
    expected = np.round((saliency - 0.1) / 0.5 * top)
    np.testing.assert_array_equal(levels, expected)
    flat = predict.encode_map(np.full((3, 4), 0.25, np.float32), output_format)
    assert not cv2.imdecode(np.frombuffer(flat, np.uint8), cv2.IMREAD_UNCHANGED).any()


def test_one_worker_and_several_batches_write_the_same_maps(run_folder, images, tmp_path):
    loaded = load_model(run_folder / "export" / "tiny" / "1")
    paths = sorted(images.glob("*.*"))
    one = predict.predict_images(loaded, paths, tmp_path / "a", batch_size=1, workers=1)
    three = predict.predict_images(loaded, paths, tmp_path / "b", batch_size=2, workers=3)
    assert one.written == three.written == [p for p in paths if p.stem != "broken"]
    for path in one.written:
        a = cv2.imread(str(tmp_path / "a" / f"{path.stem}.png"), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(tmp_path / "b" / f"{path.stem}.png"), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="workers must be >= 1"):
        predict.predict_images(loaded, paths, tmp_path / "c", workers=0)
