"""training.trainer: the model is compiled with tfsal's own Keras metrics."""

import keras
import numpy as np

from tests.training import tiny_model
from tfsal import metrics
from training import configs, trainer


def test_training_reports_the_registered_saliency_metrics():
    config = configs.FitConfig(model=tiny_model.NAME, image_size=[16, 16], encoder_weights=None)
    config = configs.resolve_model_defaults(config)
    model = trainer.build_model(config)
    trainer.compile_model(model, config, "log_density", keras.optimizers.Adam())
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    density = rng.random((2, 16, 16)) ** 2
    density /= density.sum(axis=(1, 2), keepdims=True)
    fixations = (rng.random((2, 16, 16)) < 0.1).astype("float32")
    target = np.stack([density, fixations], -1).astype("float32")
    logs = model.evaluate(images, {"saliency": target}, verbose=0, return_dict=True)
    prediction = model.predict(images, verbose=0)["saliency"]
    for name, metric in (
        ("cc", metrics.CorrelationCoefficient()),
        ("nss", metrics.NormalizedScanpathSaliency()),  # MIT: ddof 1
        ("kld", metrics.KLDivergence()),
    ):
        metric.update_state(target, prediction)
        np.testing.assert_allclose(logs[name], float(metric.result()), rtol=1e-6, atol=1e-7)
