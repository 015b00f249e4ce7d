"""training.keras_private: the Keras workarounds fail loudly when Keras changes."""

import importlib
import inspect

import keras
import pytest
import tensorflow as tf

from training import keras_private


def test_the_installed_keras_is_one_the_workarounds_were_checked_with():
    # Fails on a Keras upgrade on purpose: re-check whether the multi-worker bugs
    # remain (training/keras_private.py says how), then extend CHECKED_KERAS_VERSIONS
    # or remove the workaround.
    keras_private.check_keras()


def test_the_private_names_keep_the_signatures_the_workarounds_rely_on():
    assert keras_private.missing_private_apis() == []
    trainer = importlib.import_module("keras.src.backend.tensorflow.trainer")
    assert list(inspect.signature(trainer.reduce_per_replica).parameters) == [
        "values",
        "strategy",
        "reduction",
    ]
    assert "data_batch" in inspect.signature(keras.Model._symbolic_build).parameters
    assert {"iterator", "data_batch"} <= set(
        inspect.signature(keras.Model._maybe_symbolic_build).parameters
    )


def test_an_unchecked_keras_is_refused_before_anything_is_patched(monkeypatch):
    trainer = importlib.import_module("keras.src.backend.tensorflow.trainer")
    before = trainer.reduce_per_replica
    monkeypatch.setattr(keras, "__version__", "3.99.0")
    with pytest.raises(keras_private.KerasCompatibilityError, match="Keras 3.99.0 is installed"):
        keras_private.patch_multi_worker_log_reduction()
    with pytest.raises(keras_private.KerasCompatibilityError, match="CHECKED_KERAS_VERSIONS"):
        keras_private.build_before_multi_worker_fit(None, None, None)
    assert trainer.reduce_per_replica is before


def test_the_log_patch_is_applied_once_and_leaves_other_strategies_to_keras(monkeypatch):
    trainer = importlib.import_module("keras.src.backend.tensorflow.trainer")
    monkeypatch.setattr(trainer, "reduce_per_replica", trainer.reduce_per_replica)
    keras_private.patch_multi_worker_log_reduction()
    patched = trainer.reduce_per_replica
    keras_private.patch_multi_worker_log_reduction()
    assert patched is trainer.reduce_per_replica and patched.tfsal_patched
    value = {"loss": tf.constant(2.0)}
    assert float(patched(value, tf.distribute.get_strategy(), "auto")["loss"]) == 2.0
