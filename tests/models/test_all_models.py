"""Tests every registered model gets (after timm's test_models): outputs, taps, saving."""

import functools
import importlib
import inspect
import math
import pkgutil

import keras
import numpy as np
import pytest

import tfsal
import tfsal.models
from tests.test_case import run_export_test, run_model_saving_test
from tfsal.models import SALIENCY

MODELS = tfsal.models.list_models()
BATCH = 2
SERIALISABLE_BASES = (
    keras.layers.Layer,
    keras.losses.Loss,
    keras.metrics.Metric,
    keras.initializers.Initializer,
    keras.regularizers.Regularizer,
    keras.constraints.Constraint,
)


def small_size(name):
    """The smallest square size >= 64 the model accepts."""
    multiple = tfsal.models.model_info(name).size_multiple
    side = multiple * math.ceil(64 / multiple)
    return side, side


@functools.cache
def build(name, taps=()):
    keras.utils.set_random_seed(0)
    return tfsal.models.get(name, input_size=small_size(name), taps=taps)


def images_for(name, batch=BATCH):
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, (batch, *small_size(name), 3)).astype("float32")


def test_registry_lists_unisal():
    assert "unisal" in MODELS
    assert sorted(MODELS) == MODELS


@pytest.mark.parametrize("name", MODELS)
def test_output_is_a_dict_with_saliency(name):
    model = build(name)
    outputs = model(images_for(name), training=False)
    assert isinstance(outputs, dict)
    assert list(outputs) == [SALIENCY]
    saliency = outputs[SALIENCY].numpy()
    assert saliency.shape == (BATCH, *small_size(name), 1)
    assert np.all(np.isfinite(saliency))
    if tfsal.models.model_info(name).output == "log_density":
        np.testing.assert_allclose(np.exp(saliency).sum(axis=(1, 2, 3)), 1.0, rtol=1e-4)


@pytest.mark.parametrize("name", MODELS)
def test_tap_selection(name):
    names = [info.name for info in build(name).feature_info]
    assert names and len(names) == len(set(names))
    assert SALIENCY not in names
    assert list(build(name, taps=None).output) == [SALIENCY, *names]
    assert list(build(name, taps=2).output) == [SALIENCY, *names[-2:]]
    chosen = (names[-1], names[0])  # names come back in the model's order
    assert list(build(name, taps=chosen).output) == [SALIENCY, names[0], names[-1]]
    with pytest.raises(ValueError, match="Unknown taps"):
        tfsal.models.get(name, input_size=small_size(name), taps=["no_such_tap"])


@pytest.mark.parametrize("name", MODELS)
def test_feature_info_matches_the_tap_tensors(name):
    model = build(name, taps=None)
    height, width = small_size(name)
    outputs = model(images_for(name), training=False)
    for info in model.feature_info:
        assert height % info.stride == 0 and width % info.stride == 0, info
        expected = (BATCH, height // info.stride, width // info.stride, info.channels)
        assert tuple(outputs[info.name].shape) == expected, info.name


@pytest.mark.parametrize("name", MODELS)
def test_tapped_saliency_equals_the_single_output_model(name):
    single, tapped = build(name), build(name, taps=None)
    tapped.set_weights(single.get_weights())
    data = images_for(name)
    np.testing.assert_allclose(
        tapped(data, training=False)[SALIENCY].numpy(),
        single(data, training=False)[SALIENCY].numpy(),
        atol=1e-6,
    )


@pytest.mark.parametrize("name", MODELS)
def test_input_sizes_the_model_cannot_take(name):
    multiple = tfsal.models.model_info(name).size_multiple
    if multiple == 1:
        pytest.skip("the model takes any size")
    side = small_size(name)[0]
    with pytest.raises(ValueError, match=f"multiples of {multiple}"):
        tfsal.models.get(name, input_size=(side + 1, side))


@pytest.mark.parametrize("name", MODELS)
def test_weights_keyword_rejects_a_missing_file(name, tmp_path):
    with pytest.raises((FileNotFoundError, ValueError)):
        tfsal.models.get(name, input_size=small_size(name), weights=tmp_path / "absent.pth")


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_weights_keyword_loads_a_keras_weights_file(name, tmp_path):
    source = build(name)
    path = tmp_path / f"{name}.weights.h5"
    source.save_weights(path)
    restored = tfsal.models.get(name, input_size=small_size(name), weights=path)
    data = images_for(name)
    np.testing.assert_allclose(
        restored(data, training=False)[SALIENCY].numpy(),
        source(data, training=False)[SALIENCY].numpy(),
        atol=1e-6,
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_model_saving(name, tmp_path):
    run_model_saving_test(build(name, taps=2), images_for(name), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_export_and_reload_with_another_batch_size(name, tmp_path):
    run_export_test(build(name, taps=1), images_for(name), tmp_path, other_batch_size=3)


def _public_tfsal_classes():
    modules = [tfsal]
    for module_info in pkgutil.walk_packages(tfsal.__path__, prefix="tfsal."):
        modules.append(importlib.import_module(module_info.name))
    found = {}
    for module in modules:
        for name, obj in inspect.getmembers(module, inspect.isclass):
            defined_here = obj.__module__ == module.__name__ and not name.startswith("_")
            if defined_here and issubclass(obj, SERIALISABLE_BASES):
                found[f"{module.__name__}.{name}"] = obj
    return found


def test_every_custom_keras_class_is_registered_serialisable():
    classes = _public_tfsal_classes()
    assert "tfsal.models.unisal.layers.GaussianPriorMaps" in classes
    unregistered = [
        qualified
        for qualified, cls in classes.items()
        if keras.saving.get_registered_object(f"tfsal>{cls.__name__}") is not cls
    ]
    assert not unregistered, (
        f"add @keras.saving.register_keras_serializable(package='tfsal') to {unregistered}"
    )


def test_unknown_model_name():
    with pytest.raises(
        ValueError, match="Unknown model 'no_such_model'. Registered models: .*unisal"
    ):
        tfsal.models.get("no_such_model")


def test_duplicate_registration_is_rejected():
    with pytest.raises(ValueError, match="'unisal' is already registered"):
        tfsal.models.register_model("unisal")(lambda **kwargs: None)
    assert tfsal.models.model_info("unisal").builder.__module__ == "tfsal.models.unisal.model"
