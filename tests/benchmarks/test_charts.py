"""benchmarks/charts.py: the paired bar chart of direct_readout.py and tap_r2.py."""

import numpy as np
import pytest

from benchmarks.charts import paired_bar_chart

BARS = (("first", [0.2, 0.4]), ("second", [0.3, 0.1]))


def _chart(bars=BARS, **options):
    return paired_bar_chart(
        ["a", "b"], bars, size=(4.0, 3.0), value_format="%.1f", ylabel="y", title="t", **options
    )


def test_the_chart_is_an_rgb_picture_of_the_figure_size():
    picture = _chart()
    assert picture.dtype == np.uint8 and picture.shape == (300, 400, 3)  # inches x 100 dpi


def test_the_picture_shows_the_values_and_the_reference_line():
    picture = _chart()
    assert not np.array_equal(picture, _chart(bars=(BARS[0], ("second", [0.3, 0.35]))))
    assert not np.array_equal(picture, _chart(reference=(0.25, "target")))


def test_a_bar_without_one_value_per_group_is_refused():
    with pytest.raises(ValueError, match=r"Bar 'second' needs one value per group \(2\)"):
        _chart(bars=(BARS[0], ("second", [0.3])))
