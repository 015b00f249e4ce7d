"""The no-argument run (CMRNet on generated pop-out arrays) shows the method working."""

import json

import numpy as np
import pytest

from serving.predictor import load_saved_model
from training import configs, job

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def border_ratio(saliency: np.ndarray) -> float:
    """Mean of the outer 1/32 of each side of a map over the whole map's mean."""
    band = max(1, min(saliency.shape) // 32)
    inner = saliency[band:-band, band:-band]
    border_mean = (saliency.sum() - inner.sum()) / (saliency.size - inner.size)
    return float(border_mean / saliency.mean())


def test_border_ratio_sees_a_frame():
    flat = np.ones((64, 64))
    framed = flat.copy()
    framed[:2] = framed[-2:] = framed[:, :2] = framed[:, -2:] = 5.0
    assert border_ratio(flat) == pytest.approx(1.0)
    assert border_ratio(framed) > 2.0


def test_the_default_run_is_cmrnet_on_2000_generated_arrays_at_96_px():
    config = job.resolve(configs.FitConfig(out="unused"))
    assert (config.model, config.data) == ("cmrnet", "popout")
    assert config.image_size == [96, 96] and config.epochs == 4 and config.val_fraction == 0.1
    assert config.optimizer.decay_per_epoch == 0.5
    # A value the user gave wins over the default run's.
    changed = job.resolve(configs.FitConfig(out="unused", epochs=1, val_fraction=0.3))
    assert changed.epochs == 1 and changed.val_fraction == 0.3


@pytest.mark.slow
def test_the_default_recipe_beats_spectral_residual_on_arrays_it_never_saw(tmp_path):
    # The default recipe on half the arrays for half the epochs (900 + 100 images,
    # 2 epochs): the full run reaches CC 0.8-0.9 (BENCHMARKS.md, "Default run").
    config = configs.FitConfig(out=str(tmp_path / "run"), epochs=2, max_images=1000)
    outputs = job.run(config)
    metrics = json.loads(outputs.metrics.read_text())
    assert metrics["n_images"] == 100
    model = metrics["results"]["cmrnet"]
    peer = metrics["results"]["baseline:spectral-residual"]
    assert model["CC"] > peer["CC"] and model["NSS"] > peer["NSS"], metrics["results"]
    assert model["GSI"] > peer["GSI"], metrics["results"]

    dataset, _, val_ids = job.load_split(job.resolve(config))
    predict = load_saved_model(outputs.export)
    ratios = [border_ratio(predict(dataset.load(i).image)) for i in val_ids[:20]]
    assert np.mean(ratios) < 1.0, ratios
