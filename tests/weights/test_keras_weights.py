import math

import h5py
import keras
import numpy as np
import pytest

import tfsal.models
from tfsal.weights import CheckpointError
from tfsal.weights.keras_weights import is_keras_weights_file, load_keras_weights


def _dense_model(units=3, name="dense_model"):
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(units, name="hidden")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="out")(hidden), name=name)


@pytest.fixture
def wrong_kind_files(tmp_path):
    """Files a user may pass as ``weights=`` that no model can load."""
    random_bytes = tmp_path / "random.h5"
    random_bytes.write_bytes(np.random.default_rng(0).bytes(4096))
    foreign_hdf5 = tmp_path / "measurements.weights.h5"
    with h5py.File(foreign_hdf5, "w") as file:
        file["values"] = np.zeros(3)
    other_model = tmp_path / "other.weights.h5"
    _dense_model(units=5).save_weights(other_model)
    return {"random": random_bytes, "foreign": foreign_hdf5, "other": other_model}


def test_loads_weights_saved_from_the_same_model(tmp_path):
    source, target = _dense_model(), _dense_model()
    path = tmp_path / "same.weights.h5"
    source.save_weights(path)
    assert is_keras_weights_file(path)
    load_keras_weights(target, path)
    for expected, loaded in zip(source.get_weights(), target.get_weights(), strict=True):
        np.testing.assert_array_equal(loaded, expected)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("random", r"random\.h5 is not a Keras weight file"),
        ("foreign", r"Cannot load .*measurements\.weights\.h5 into the model 'dense_model'"),
        ("other", r"into the model 'dense_model': .*shape"),
    ],
)
def test_weights_of_the_wrong_kind_give_one_clear_error(wrong_kind_files, kind, message):
    with pytest.raises(CheckpointError, match=message) as refusal:
        load_keras_weights(_dense_model(), wrong_kind_files[kind])
    assert "same configuration" in str(refusal.value)
    assert refusal.value.__cause__ is None and refusal.value.__context__ is None


def test_a_keras_3_file_named_h5_gets_the_naming_hint(tmp_path):
    path = tmp_path / "model.h5"
    _dense_model().save_weights(tmp_path / "model.weights.h5")
    path.write_bytes((tmp_path / "model.weights.h5").read_bytes())
    with pytest.raises(CheckpointError, match=r"must be named \*\.weights\.h5"):
        load_keras_weights(_dense_model(), path)


def test_a_missing_file_is_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.weights.h5"):
        load_keras_weights(_dense_model(), tmp_path / "absent.weights.h5")
    assert not is_keras_weights_file(tmp_path)


def _small_size(name):
    multiple = tfsal.models.model_info(name).size_multiple
    side = multiple * math.ceil(64 / multiple)
    return side, side


@pytest.mark.slow
@pytest.mark.parametrize("name", tfsal.models.list_models())
def test_every_model_refuses_weights_of_the_wrong_kind(wrong_kind_files, name):
    # Each family reads `weights=` its own way (UNISAL: PyTorch or Keras, MSI-Net:
    # TF checkpoints or Keras, CMRNet: Keras), all through one Keras loader.
    for kind in ("random", "foreign"):
        with pytest.raises(CheckpointError, match=wrong_kind_files[kind].name):
            tfsal.models.get(name, input_size=_small_size(name), weights=wrong_kind_files[kind])
