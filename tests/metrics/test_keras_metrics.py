import keras
import numpy as np
import pytest

from tfsal import metrics
from tfsal.metrics import keras_metrics

CASES = [
    (keras_metrics.CorrelationCoefficient, metrics.cc, "density", {}),
    (keras_metrics.NormalizedScanpathSaliency, metrics.nss, "fixations", {}),
    (keras_metrics.KLDivergence, metrics.kld, "density", {}),
    (keras_metrics.Similarity, metrics.sim, "density", {}),
    (keras_metrics.AUCJudd, metrics.auc_judd, "fixations", {}),
]


def make_batch(batch=5, height=12, width=16, seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(batch, height, width))
    logits[1, :4] = -3.0  # ties
    log_density = logits - np.log(np.exp(logits).sum(axis=(1, 2), keepdims=True))
    fixations = (rng.random((batch, height, width)) < 0.1).astype("float32")
    fixations[0, 0, 0] = 1.0
    fixations[2] = 0.0  # an image without fixations
    density = rng.random((batch, height, width))
    density /= density.sum(axis=(1, 2), keepdims=True)
    y_true = np.stack([density, fixations], -1).astype("float32")
    return y_true, log_density[..., None].astype("float32")


def expected_mean(function, target, y_true, saliency):
    density, fixations = y_true[..., 0], y_true[..., 1]
    if target == "density":
        return np.mean([function(s, d) for s, d in zip(saliency, density, strict=True)])
    scored = [(s, f) for s, f in zip(saliency, fixations, strict=True) if f.any()]
    return np.mean([function(s, f) for s, f in scored])


@pytest.mark.parametrize("metric_cls, function, target, kwargs", CASES)
def test_matches_functional_metric_on_log_densities(metric_cls, function, target, kwargs):
    y_true, y_pred = make_batch()
    metric = metric_cls(**kwargs)
    metric.update_state(y_true, y_pred)
    expected = expected_mean(function, target, y_true, np.exp(y_pred[..., 0].astype("float64")))
    assert float(metric.result()) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("metric_cls, function, target, kwargs", CASES)
def test_matches_functional_metric_on_maps(metric_cls, function, target, kwargs):
    y_true, _ = make_batch(seed=1)
    maps = np.random.default_rng(2).random(y_true.shape[:-1] + (1,)).astype("float32")
    metric = metric_cls(output="map", **kwargs)
    metric.update_state(y_true, maps)
    expected = expected_mean(function, target, y_true, maps[..., 0].astype("float64"))
    assert float(metric.result()) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("metric_cls, function, target, kwargs", CASES)
def test_split_batches_accumulate_like_one_batch(metric_cls, function, target, kwargs):
    y_true, y_pred = make_batch(batch=7, seed=3)
    whole = metric_cls(**kwargs)
    whole.update_state(y_true, y_pred)
    split = metric_cls(**kwargs)
    for part in (slice(0, 1), slice(1, 4), slice(4, 7)):
        split.update_state(y_true[part], y_pred[part])
    assert float(split.result()) == pytest.approx(float(whole.result()), abs=1e-6)
    split.reset_state()
    split.update_state(y_true[:2], y_pred[:2])
    fresh = metric_cls(**kwargs)
    fresh.update_state(y_true[:2], y_pred[:2])
    assert float(split.result()) == pytest.approx(float(fresh.result()), abs=1e-7)


def test_sample_weights_weight_images():
    y_true, y_pred = make_batch(batch=4)
    weighted = keras_metrics.CorrelationCoefficient()
    weighted.update_state(y_true, y_pred, sample_weight=np.array([1.0, 0.0, 0.0, 1.0]))
    subset = keras_metrics.CorrelationCoefficient()
    subset.update_state(y_true[[0, 3]], y_pred[[0, 3]])
    assert float(weighted.result()) == pytest.approx(float(subset.result()), abs=1e-6)


def test_config_round_trip_and_registration():
    metric = keras_metrics.NormalizedScanpathSaliency(output="map", ddof=0, name="nss0")
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(metric))
    assert type(revived) is keras_metrics.NormalizedScanpathSaliency
    assert revived.get_config() == metric.get_config()
    for name in ("AUCJudd", "CorrelationCoefficient", "KLDivergence", "Similarity"):
        cls = getattr(metrics, name)
        assert keras.saving.get_registered_name(cls) == f"tfsal>{name}"


def test_usable_in_compile_and_evaluate():
    inputs = keras.Input((8, 8, 3))
    logits = keras.layers.Conv2D(1, 3, padding="same")(inputs)
    flat = keras.layers.Reshape((64,))(logits)
    log_density = keras.layers.Reshape((8, 8, 1))(keras.ops.log_softmax(flat, axis=-1))
    model = keras.Model(inputs, {"saliency": log_density})
    model.compile(
        loss={"saliency": "mse"},
        metrics={"saliency": [keras_metrics.CorrelationCoefficient(), keras_metrics.AUCJudd()]},
    )
    rng = np.random.default_rng(0)
    images = rng.random((6, 8, 8, 3)).astype("float32") * 255
    y_true, _ = make_batch(batch=6, height=8, width=8)
    results = model.evaluate(
        images, {"saliency": y_true}, batch_size=4, verbose=0, return_dict=True
    )
    predicted = model.predict(images, verbose=0)["saliency"][..., 0].astype("float64")
    expected = np.mean(
        [metrics.cc(np.exp(p), d) for p, d in zip(predicted, y_true[..., 0], strict=True)]
    )
    cc_key = next(key for key in results if key.endswith("cc"))
    assert results[cc_key] == pytest.approx(expected, abs=1e-4)


def test_bad_arguments_and_shapes():
    with pytest.raises(ValueError, match="output must be one of"):
        keras_metrics.CorrelationCoefficient(output="probability")
    with pytest.raises(ValueError, match="ddof must be 0 or 1"):
        keras_metrics.NormalizedScanpathSaliency(ddof=3)
    y_true, y_pred = make_batch()
    with pytest.raises(ValueError, match="y_true must be"):
        keras_metrics.KLDivergence().update_state(y_true[..., :1], y_pred)
    with pytest.raises(ValueError, match="y_pred must be"):
        keras_metrics.KLDivergence().update_state(y_true, y_true)
