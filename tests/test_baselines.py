import numpy as np
import pytest

from tfsal import baselines
from tfsal.data.popout import generate_stimulus
from tfsal.data.record import SaliencyRecord
from tfsal.metrics import nss

FIXED = ["uniform", "centre-bias", "spectral-residual", "fine-grained", "image-signature"]


@pytest.mark.parametrize("name", FIXED)
@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_baselines_return_a_map_at_the_input_size(name, dtype):
    image = (np.random.default_rng(0).random((45, 70, 3)) * 255).astype(dtype)
    saliency = baselines.get(name)(image)
    assert saliency.shape == (45, 70)
    assert saliency.dtype == np.float32
    assert np.isfinite(saliency).all() and saliency.min() >= 0


def test_registry_lists_every_baseline_and_rejects_unknown_names():
    assert baselines.list_baselines() == sorted([*FIXED, "fitted-centre-bias"])
    with pytest.raises(ValueError, match="Known baselines: centre-bias"):
        baselines.get("itti-koch")
    with pytest.raises(ValueError, match="pass training_records"):
        baselines.get("fitted-centre-bias")


def test_uniform_and_centre_bias_shapes():
    image = np.zeros((40, 60, 3), np.uint8)
    assert np.ptp(baselines.uniform(image)) == 0
    centre = baselines.get("centre-bias", sigma=0.1)(image)
    assert np.unravel_index(centre.argmax(), centre.shape) in {
        (19, 29),
        (19, 30),
        (20, 29),
        (20, 30),
    }
    np.testing.assert_allclose(centre, centre[::-1, ::-1], atol=1e-6)
    assert centre[20, 0] < baselines.centre_bias(image, sigma=0.3)[20, 0]
    with pytest.raises(ValueError, match="sigma must be > 0"):
        baselines.centre_bias(image, sigma=0)


def test_bad_images_are_rejected():
    with pytest.raises(ValueError, match=r"\(H, W, 3\) RGB image"):
        baselines.spectral_residual(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="NaN"):
        baselines.image_signature(np.full((10, 10, 3), np.nan, np.float32))


def test_image_signature_finds_a_small_blob():
    image = np.full((96, 128, 3), 120, np.uint8)
    image[60:66, 30:36] = (250, 40, 40)
    saliency = baselines.image_signature(image)
    row, col = np.unravel_index(saliency.argmax(), saliency.shape)
    assert abs(row - 63) <= 6 and abs(col - 33) <= 6


@pytest.mark.parametrize("name", ["image-signature", "spectral-residual"])
def test_spectral_baselines_beat_chance_on_pop_out(name):
    scores = []
    for index in range(3):
        stimulus = generate_stimulus(seed=0, index=index, image_size=128)
        saliency = baselines.get(name)(stimulus.image)
        scores.append(nss(saliency, stimulus.target_mask))
    assert np.mean(scores) > 0.5


def test_fitted_centre_bias_follows_the_training_fixations():
    image = np.zeros((30, 50, 3), np.uint8)
    records = [
        SaliencyRecord("a", np.zeros((100, 200, 3), np.uint8), np.array([[20.0, 30.0]] * 5)),
        SaliencyRecord("b", np.zeros((50, 50, 3), np.uint8), np.array([[10.0, 8.0], [9, 7]])),
        SaliencyRecord("c", np.zeros((50, 50, 3), np.uint8), np.zeros((0, 2))),
    ]
    fitted = baselines.get("fitted-centre-bias", training_records=records)
    saliency = fitted(image)
    assert saliency.shape == (30, 50)
    row, col = np.unravel_index(saliency.argmax(), saliency.shape)
    assert row < 10 and col < 12
    assert "7 fixations" in repr(fitted)
    with pytest.raises(ValueError, match="hold no fixations"):
        baselines.FittedCentreBias.from_records(records[2:])
    with pytest.raises(ValueError, match=r"fractions in \[0, 1\]"):
        baselines.FittedCentreBias(np.array([[0.5, 1.5]]))
