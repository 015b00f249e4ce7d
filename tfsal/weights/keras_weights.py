"""Whole-model weights saved by Keras, loaded with one clear error when they do not fit.

Every registered model accepts ``weights=`` a file written by ``model.save_weights``
from a model of the same family and configuration (UNISAL and MSI-Net also read
their released checkpoints). ``model.load_weights`` on anything else fails deep
inside h5py or Keras (``OSError: file signature not found``, ``Layer count
mismatch``, shape errors listing every layer); ``load_keras_weights`` checks that
the file is a Keras weight file first and turns what Keras refuses into one
``CheckpointError`` that names the file, the model and what to pass instead.
"""

import os
import warnings
import zipfile
from pathlib import Path

import keras

from tfsal.weights.read_limits import CheckpointError

# The first bytes of every HDF5 file (without a user block, which Keras never writes).
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def is_keras_weights_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds Keras weights: an HDF5 file or a ``.keras`` archive."""
    path = Path(path)
    if not path.is_file():
        return False
    with open(path, "rb") as file:
        if file.read(len(_HDF5_SIGNATURE)) == _HDF5_SIGNATURE:
            return True
    return path.suffix == ".keras" and zipfile.is_zipfile(path)


def load_keras_weights(model: keras.Model, path: str | os.PathLike) -> None:
    """Loads a Keras weight file into ``model``, or explains why it does not fit.

    Args:
        model: a model built by ``tfsal.models.get``.
        path: a ``.weights.h5`` file (or ``.keras`` archive) saved from a model of
            the same family and configuration.

    Raises:
        FileNotFoundError: if there is no file at ``path``.
        CheckpointError: if the file is not a Keras weight file or its weights do
            not fit ``model``.
    """
    path = Path(path)
    advice = (
        f"Pass a .weights.h5 file written by save_weights() from a '{model.name}' model of the "
        "same configuration."
    )
    if not path.is_file():
        raise FileNotFoundError(f"No weights file at {path}. {advice}")
    if not is_keras_weights_file(path):
        raise CheckpointError(
            f"{path} is not a Keras weight file (neither HDF5 nor a .keras archive). {advice}"
        )
    error = _load_weights_or_error(model, path)
    if error is not None:
        # Keras's messages run over many lines (one per layer); the first two say why.
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = " ".join(lines[:2])[:400] or type(error).__name__
        if path.suffix in (".h5", ".hdf5") and not path.name.endswith(".weights.h5"):
            # Keras picks the reader by name: *.h5 is its legacy format.
            advice += " Keras 3 weight files must be named *.weights.h5."
        raise CheckpointError(
            f"Cannot load {path} into the model '{model.name}': {reason} {advice}"
        )


def _load_weights_or_error(model, path):
    """``model.load_weights(path)``, returning what it raises instead of raising it.

    Before it raises, Keras warns once per nested container it cannot match (over a
    hundred for UNISAL); the error says it all, so the warnings are replayed only
    when the weights load.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.load_weights(str(path))
        except (ValueError, OSError, KeyError, TypeError) as error:
            return error
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return None
