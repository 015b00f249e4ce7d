import keras
import numpy as np
import pytest

from tests.explain.parents import SMALL_BANK, derive_toy, images
from tfsal import explain
from tfsal.conventions import SALIENCY
from tfsal.explain.explainable_model import bank_name
from tfsal.explain.feature_cache import FeatureCache, feature_head
from tfsal.explain.readout_training import ReadoutTrainer
from tfsal.explain.taps import Tap

pytestmark = pytest.mark.filterwarnings("ignore:Tap .* training rows:UserWarning")


def _derive(**kwargs):
    kwargs.setdefault("fine_tune_epochs", 1)
    return derive_toy(**kwargs)


def test_cached_features_fit_the_same_weights_as_streaming_the_images():
    streamed = _derive(cache_features=False).model.get_weights()
    for memory_bytes in (1 << 30, 0):  # all in memory; every batch on disk
        cached = _derive(cache_memory_bytes=memory_bytes).model.get_weights()
        assert len(cached) == len(streamed)
        for a, b in zip(cached, streamed, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_the_cache_keeps_batches_in_memory_up_to_its_budget_then_on_disk():
    rng = np.random.default_rng(0)
    batches = [([rng.random((2, 4, 4, 3)), rng.random((2, 2, 2, 3))], rng.random((2, 8, 8, 1)))]
    batches *= 3
    one_batch = sum(a.astype("float32").nbytes for a in (*batches[0][0], batches[0][1]))
    with FeatureCache(memory_bytes=one_batch) as cache:
        for features, target in batches:
            cache.append(features, target)
        assert len(cache) == 3 and cache.on_disk == 2 and cache.bytes_in_memory == one_batch
        folder = cache._folder.name
        for _ in range(2):  # re-iterable
            for (features, target), (expected, expected_target) in zip(cache, batches, strict=True):
                for got, want in zip(features, expected, strict=True):
                    np.testing.assert_array_equal(got, want.astype("float32"))
                np.testing.assert_array_equal(target, expected_target.astype("float32"))
    assert not __import__("os").path.exists(folder) and len(cache) == 0
    with pytest.raises(ValueError, match="memory_bytes must be an int >= 0. Received"):
        FeatureCache(memory_bytes=-1)


def test_fitting_on_the_cache_runs_neither_the_parent_nor_the_banks():
    model = explain.build_explainable_model(
        [Tap("a", 4, 4), Tap("b", 5, 8)], input_shape=(32, 32, 3), bank_config=SMALL_BANK
    )
    x = images(4)
    features = [model.get_layer(bank_name(stride))(x) for stride in (4, 8)]
    target = keras.ops.log_softmax(np.random.default_rng(0).random((4, 32 * 32)), axis=-1)
    target = np.reshape(target, (4, 32, 32, 1))

    def no_parent(images):
        raise AssertionError("the parent ran")

    cache = FeatureCache()
    cache.append(features, target)
    for stride in (4, 8):  # the banks must not run either
        model.get_layer(bank_name(stride)).call = no_parent
    before = [w.copy() for w in model.get_weights()]
    ReadoutTrainer(model, no_parent, "log_density", 0.05, None, False).fit(cache, 2, False)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


def test_a_head_that_would_miss_what_a_layer_reads_from_the_image_is_refused():
    image = keras.Input((16, 16, 3), name="image")
    bank = explain.build_explainable_model(
        [Tap("a", 4, 4)], input_shape=(16, 16, 3), bank_config=SMALL_BANK
    )
    saliency = keras.layers.Add()([bank(image)[SALIENCY], keras.layers.Conv2D(1, 1)(image)])
    model = keras.Model(image, {SALIENCY: saliency})
    with pytest.raises(ValueError, match="read the image itself.*cache_features=False"):
        feature_head(model)
    with pytest.raises(ValueError, match="cache_memory_bytes must be an int >= 0"):
        _derive(cache_memory_bytes=-1)


def test_fine_tuning_moves_the_reconstructions_at_their_own_learning_rate():
    def kernels(derivation):
        return [
            layer.kernel.numpy()
            for layer in explain.reconstruction_layers(derivation.model).values()
        ]

    ridge = _derive(fine_tune_epochs=0)
    still = _derive(reconstruction_learning_rate=1e-12)
    moved = _derive(reconstruction_learning_rate=1e-2)
    for a, b, c in zip(kernels(ridge), kernels(still), kernels(moved), strict=True):
        np.testing.assert_allclose(b, a, atol=1e-8)
        assert np.abs(c - a).max() > 1e-3
    # A fitted readout is refined at the reconstructions' rate too, not restarted at
    # its own (which undid the fit on NUS).
    readouts = [
        explain.tap_readouts(d.model)["enc3"].readout.numpy() for d in (ridge, still, moved)
    ]
    np.testing.assert_allclose(readouts[1], readouts[0], atol=1e-8)
    assert np.abs(readouts[2] - readouts[0]).max() > 1e-3
    with pytest.raises(ValueError, match="reconstruction_learning_rate must be > 0"):
        _derive(reconstruction_learning_rate=0.0)
