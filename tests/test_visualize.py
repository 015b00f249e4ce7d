"""tfsal.visualize: heat maps, overlays and atomic PNG files."""

import cv2
import numpy as np
import pytest

from tfsal import visualize


def test_heatmap_spans_the_colour_map_whatever_the_range():
    ramp = np.linspace(-50.0, 3.0, 256).reshape(1, 256)
    heat = visualize.heatmap(ramp)
    assert heat.shape == (1, 256, 3) and heat.dtype == np.uint8
    jet = cv2.cvtColor(
        cv2.applyColorMap(np.arange(256, dtype=np.uint8)[None], cv2.COLORMAP_JET),
        cv2.COLOR_BGR2RGB,
    )
    # The minimum gets the colour map's first colour, the maximum its last.
    np.testing.assert_array_equal(heat[0, [0, -1]], jet[0, [0, -1]])
    # A constant map has no contrast: every pixel gets the colour of 0.
    np.testing.assert_array_equal(
        visualize.heatmap(np.full((2, 3), 7.0)), np.broadcast_to(jet[0, 0], (2, 3, 3))
    )


def test_overlay_blends_with_the_given_opacity():
    image = np.full((4, 5, 3), 200, np.uint8)
    saliency = np.arange(20.0).reshape(4, 5)
    np.testing.assert_array_equal(visualize.overlay(image, saliency, opacity=0.0), image)
    np.testing.assert_array_equal(
        visualize.overlay(image, saliency, opacity=1.0), visualize.heatmap(saliency)
    )
    half = visualize.overlay(image.astype(np.float32), saliency)
    expected = 0.5 * image + 0.5 * visualize.heatmap(saliency)
    assert np.abs(half.astype(float) - expected).max() <= 1


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: visualize.overlay(np.zeros((4, 5, 3)), np.zeros((4, 5)), 1.5), "opacity"),
        (lambda: visualize.overlay(np.zeros((4, 5, 3)), np.zeros((5, 4))), "Received: image"),
        (lambda: visualize.heatmap(np.array([[0.0, np.nan]])), "finite"),
        (lambda: visualize.heatmap(np.zeros((2, 2, 1))), r"\(h, w\) map"),
        (lambda: visualize.write_png("x.png", np.zeros((2, 2, 3))), "uint8"),
    ],
)
def test_bad_input_is_refused_with_the_reason(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_write_png_round_trips_and_leaves_no_temporary_file(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (6, 7, 3), dtype=np.uint8)
    path = visualize.write_png(tmp_path / "sub" / "picture.png", rgb)
    read = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(read, rgb)
    assert sorted(p.name for p in path.parent.iterdir()) == ["picture.png"]
