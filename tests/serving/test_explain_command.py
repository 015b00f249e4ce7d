"""python -m serving.explain: several methods, a user region, log-Gabor breakdowns."""

import json

import cv2
import numpy as np
import pytest

from serving import contributions, explain
from serving.loaded_model import LoadedModel
from tests.serving import explained_models

HEIGHT, WIDTH = 36, 60  # not the model's size: maps must come back at this size


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    explained_models.export(explained_models.deep_model(), run / "export" / "tiny" / "1")
    explained_models.export(
        explained_models.explainable_model(),
        run / "export" / "tiny_explainable" / "1",
        {contributions.GROUPS_METADATA_KEY: list(explained_models.GROUPS)},
    )
    return run


@pytest.fixture(scope="module")
def image_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("images") / "street.png"
    image = explained_models.random_image(HEIGHT, WIDTH, seed=4)
    cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return path


def test_several_methods_write_maps_of_the_image_size(run_folder, image_file, tmp_path):
    out = tmp_path / "out"
    methods = ["gradients", "ig", "occlusion", "loggabor"]
    code = explain.main(
        [
            "--model",
            str(run_folder),
            "--image",
            str(image_file),
            "--method",
            *methods,
            "--region",
            "10,6,20,12",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    for method in methods:
        raw = np.load(out / f"street_{method}.npy")
        assert raw.shape == (HEIGHT, WIDTH) and np.isfinite(raw).all()
        assert cv2.imread(str(out / f"street_{method}.png")).shape == (HEIGHT, WIDTH, 3)
    report = json.loads((out / "street_region.json").read_text())
    assert set(report) == {"tiny", "tiny_explainable"}
    assert report["tiny"]["region"] == {"x": 10, "y": 6, "w": 20, "h": 12}
    assert 0.0 < report["tiny"]["mass"] < 1.0
    groups = json.loads((out / "street_loggabor_groups.json").read_text())
    assert (out / "street_loggabor_groups.png").is_file()
    # Y/scale0 + Y/scale1: the colour marginal sums both groups' shares; the prior has none.
    assert [g["name"] for g in groups["groups"]] == list(explained_models.GROUPS[:2])
    colour = groups["marginals"]["colour"]["Y"]
    assert colour == pytest.approx(sum(g["share"] for g in groups["groups"]))
    assert colour == pytest.approx(groups["image_share"])
    assert set(groups["marginals"]["scale"]) == {"scale0", "scale1"}


def test_loggabor_weighs_the_image_groups_by_the_regions_mass_gradient(image_file):
    model = explained_models.explainable_model()
    loaded = LoadedModel("tiny", model, explained_models.SIZE, "log_density")
    from tfsal.data.images import read_image

    explanation = explain.explain_image(loaded, read_image(image_file), ["loggabor"])
    canvas_outputs = model(explanation.canvas[None])
    maps = np.asarray(canvas_outputs["contributions"])[0]
    mask = explanation.region.mask(explained_models.SIZE)
    expected = contributions.region_attribution(maps, mask, explained_models.GROUPS)
    np.testing.assert_allclose(explanation.maps["loggabor"], expected.pixel_map, rtol=1e-5)
    assert explanation.breakdown["image_share"] == pytest.approx(
        float(expected.pixel_map.sum()), abs=1e-5
    )


def test_gradcam_runs_on_a_keras_model(image_file):
    loaded = LoadedModel(
        "tiny", explained_models.deep_model(), explained_models.SIZE, "log_density"
    )
    from tfsal.data.images import read_image

    explanation = explain.explain_image(loaded, read_image(image_file), ["gradcam", "smoothgrad"])
    for result in explanation.maps.values():
        assert result.shape == explained_models.SIZE and np.isfinite(result).all()


def test_bad_requests_give_one_clear_error(run_folder, image_file, tmp_path, capsys):
    deep_only = run_folder / "export" / "tiny" / "1"
    base = ["--image", str(image_file), "--out", str(tmp_path)]
    assert explain.main(["--model", str(deep_only), "--method", "loggabor", *base]) == 2
    assert "loggabor needs an explainable model" in capsys.readouterr().err
    assert explain.main(["--model", str(deep_only), "--method", "gradcam", *base]) == 2
    assert "SavedModel hides its layers" in capsys.readouterr().err
    assert (
        explain.main(["--model", str(run_folder), "--method", "ig", "--region", "50,0,20,5", *base])
        == 2
    )
    assert "inside the 60x36 image" in capsys.readouterr().err
