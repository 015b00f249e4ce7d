import keras
import numpy as np
import pytest

from tests.explain.parents import derive_toy, images, toy_parent
from tfsal import explain
from tfsal.explain import report
from tfsal.explain.contributions import feature_group_name
from tfsal.explain.explainable_model import bank_name
from tfsal.layers import colour

pytestmark = pytest.mark.filterwarnings("ignore:Tap .* training rows:UserWarning")


@pytest.fixture(scope="module")
def derived():
    parent = toy_parent()
    derivation = derive_toy(parent, readout_epochs=3)
    return parent, derivation, images(8)[:3]


@pytest.fixture(scope="module")
def analysis(derived):
    parent, derivation, data = derived
    return report.analyse(parent, derivation.model, data, derivation.fidelity)


def test_group_names_parse_into_colour_scale_and_orientation():
    assert report.parse_group("U/scale1/orientation2") == {
        "colour": "U",
        "scale": 1,
        "orientation": 2,
    }
    assert report.parse_group("V/lowpass") == {"colour": "V", "scale": None, "orientation": None}
    members = report.aspect_members(["Y/scale0/orientation0", "Y/scale1/orientation0", "Y/lowpass"])
    assert members == {
        "colour": {"Y": [0, 1, 2]},
        "scale": {"scale 0": [0], "scale 1": [1]},
        "orientation": {"orientation 0": [0, 1]},
    }
    with pytest.raises(ValueError, match="Not a feature group"):
        report.parse_group("Y-scale0")


def test_importance_shares_cover_every_aspect_and_add_up_to_one(analysis):
    importance = analysis.numbers["importance"]
    assert set(importance) == {"enc2", "enc3"}
    for tap in importance.values():
        assert set(tap["colour"]) == {"Y", "U", "V"}
        assert set(tap["scale"]) == {"scale 0", "scale 1"}
        for aspect in report.ASPECTS:
            shares = [value["weight_share"] for value in tap[aspect].values()]
            assert sum(shares) == pytest.approx(1.0)


def test_a_group_without_weights_has_no_importance(derived):
    parent, derivation, data = derived
    model = keras.models.clone_model(derivation.model)
    model.set_weights(derivation.model.get_weights())
    names = explain.group_names(model)
    u_rows = [i for i, name in enumerate(names[:-1]) if name.startswith("U/")]
    layer = explain.tap_readouts(model)["enc2"].reconstruction
    kernel = keras.ops.convert_to_numpy(layer.kernel).copy()
    kernel[u_rows] = 0.0
    layer.kernel.assign(kernel)
    numbers = report.analyse(parent, model, data, derivation.fidelity).numbers
    u = numbers["importance"]["enc2"]["colour"]["U"]
    assert u["weight_share"] == 0.0 and u["r2_drop"] == pytest.approx(0.0, abs=1e-9)
    # Y was not touched: it still explains part of the tap.
    assert numbers["importance"]["enc2"]["colour"]["Y"]["weight_share"] > 0.1


def test_centre_share_tells_a_centre_bias_from_content():
    y, x = np.mgrid[-1:1:24j, -1:1:32j]
    centred = np.exp(-(x**2 + y**2) / (2 * 0.5**2))[None, :, :, None]
    assert report.centre_share(3 * centred + 1) == pytest.approx(1.0)
    noise = np.random.default_rng(0).normal(size=(2, 24, 32, 3))
    assert report.centre_share(noise) < 0.05


def test_prior_share_is_one_without_content_and_zero_without_prior():
    rng = np.random.default_rng(0)
    contributions = np.zeros((2, 8, 8, 3))
    contributions[..., -1] = rng.normal(size=(2, 8, 8))
    parent = rng.random((2, 8, 8))
    assert report.prior_share_of_saliency(contributions, parent, "log_density")[
        "variance_share"
    ] == pytest.approx(1.0)
    swapped = contributions[..., ::-1]
    assert report.prior_share_of_saliency(swapped, parent, "log_density")[
        "variance_share"
    ] == pytest.approx(0.0)


def test_a_first_layer_reading_opponent_channels_has_no_angle_to_them():
    image = keras.Input((8, 8, 3))
    conv = keras.layers.Conv2D(3, 1, use_bias=False, name="first")
    model = keras.Model(image, conv(image))
    # Filters along the (orthonormal) opponent axes, the achromatic one strongest.
    conv.kernel.assign(colour.RGB_TO_OPPONENT.T[None, None] * np.array([2.0, 1.0, 4.0]))
    result = report.colour_transform(model)
    assert result["layer"] == "first"
    opponent = result["references"]["opponent"]
    assert opponent["luminance_angle_deg"] == pytest.approx(0.0, abs=1e-3)
    assert opponent["chroma_angle_deg"] == pytest.approx(0.0, abs=1e-3)
    # Y weighs green most, the opponent achromatic axis all three alike.
    assert result["references"]["yuv"]["luminance_angle_deg"] > 5


def test_toy_parent_gets_colour_angles_and_centre_bias_per_tap(analysis):
    numbers = analysis.numbers
    assert numbers["colour_transform"]["layer"] == "enc1"
    assert set(numbers["centre_bias"]["taps"]) == {"enc2", "enc3"}
    saliency = numbers["centre_bias"]["saliency"]
    assert 0.0 <= saliency["variance_share"] <= 1.0
    assert analysis.maps["contributions"].shape == (3, 32, 32, len(numbers["groups"]))


def test_the_figures_plot_the_measured_numbers(analysis, tmp_path):
    from tfsal.explain import report_figures

    rendered = report_figures.render_figures(tmp_path, analysis)
    numbers, plotted = analysis.numbers, rendered["plotted"]
    for aspect, entry in plotted["importance"].items():
        for tap in ("enc2", "enc3"):
            assert entry["weight_share"][tap] == [
                numbers["importance"][tap][aspect][label]["weight_share"]
                for label in entry["labels"]
            ]
    shown = plotted["reconstructions"][1]["enc3"]
    activation = analysis.maps["activations"]["enc3"][1][..., shown["channel"]]
    np.testing.assert_allclose(shown["activation"], activation, atol=1e-4)
    on_this_image = report.r2_score(
        np.array(shown["reconstruction"])[..., None], np.array(shown["activation"])[..., None]
    )
    assert shown["r2_here"] == pytest.approx(on_this_image, abs=1e-3)
    files = [*rendered["files"]["reconstructions"], rendered["files"]["importance"]]
    files += [name for names in rendered["groups"].values() for name in names]
    for name in files:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert set(rendered["groups"]) >= {"Y", "U", "V", "scale 0", "orientation 2", "prior"}


def test_with_the_derivation_statistics_the_r2_drop_is_a_refit(derived):
    from tfsal.explain import group_refit

    parent, derivation, data = derived
    statistics = derivation.statistics
    numbers = report.analyse(
        parent, derivation.model, data, derivation.fidelity, statistics=statistics
    ).numbers
    assert numbers["r2_drop_method"] == "refit"
    train, val = statistics["train"]["enc2"], statistics["val"]["enc2"]
    l2 = derivation.fidelity["taps"]["enc2"]["l2"]
    bank = derivation.model.get_layer(bank_name(derivation.fidelity["taps"]["enc2"]["stride"]))
    names = [feature_group_name(*feature) for feature in bank.feature_names]
    u_columns = [i for i in range(train.num_features) if names[i % len(names)].startswith("U/")]
    assert len(u_columns) == train.num_features // 3  # a third of the features are U's
    kept = group_refit.refit_r2(
        group_refit.without_features(train, u_columns),
        group_refit.without_features(val, u_columns),
        l2,
    )
    refitted = group_refit.refit_r2(train, val, l2)
    u = numbers["importance"]["enc2"]["colour"]["U"]["r2_drop"]
    assert u == pytest.approx(refitted - kept, abs=1e-9)
    zeroed = report.analyse(parent, derivation.model, data, derivation.fidelity).numbers
    assert zeroed["r2_drop_method"] == "zeroed"
    assert zeroed["importance"]["enc2"]["colour"]["U"]["r2_drop"] != pytest.approx(u)


def test_the_reconstruction_figure_shows_the_image_once(analysis, tmp_path, monkeypatch):
    from tfsal.explain import report_figures

    drawn = []
    monkeypatch.setattr(report_figures, "_save", lambda figure, path: drawn.append(figure))
    maps = analysis.maps
    taps = list(maps["activations"])
    report_figures.reconstruction_figure(
        tmp_path / "r.png",
        maps["images"][0],
        {tap: a[0] for tap, a in maps["activations"].items()},
        {tap: r[0] for tap, r in maps["reconstructions"].items()},
        {tap: 0.5 for tap in taps},
    )
    pictures = [image for axis in drawn[0].axes for image in axis.get_images()]
    colour = [image for image in pictures if image.get_array().ndim == 3]
    assert len(colour) == 1  # the input image, once
    assert len(pictures) == 1 + 2 * len(taps)  # and per tap its activation and reconstruction


def test_the_group_maps_share_one_scale_per_group(analysis, tmp_path):
    import matplotlib
    from PIL import Image

    from tfsal.explain import report_figures

    contributions, names = analysis.maps["contributions"], analysis.numbers["groups"]
    files, limits = report_figures.group_maps(tmp_path, contributions, names)
    prior = contributions[..., -1]
    assert limits["prior"]["limit"] == pytest.approx(float(np.abs(prior).max()))
    colours = matplotlib.colormaps[report_figures.GROUP_COLOURS]
    for index, name in enumerate(files["prior"]):
        picture = np.asarray(Image.open(tmp_path / name).convert("RGB"))
        expected = colours(0.5 + 0.5 * prior[index] / limits["prior"]["limit"])[..., :3] * 255
        np.testing.assert_allclose(picture, expected, atol=1)
    assert (tmp_path / report_figures.GROUP_COLOUR_BAR).is_file()
