"""Turns model specifications into predictors: ``image -> (H, W) saliency map``.

A predictor takes an (H, W, 3) RGB image and returns its saliency map at the same
size, whatever the model's input size. ``resolve_model`` reads one model
specification (the ``--model`` value of ``training.evaluate``): ``baseline:NAME``
(``tfsal.baselines``), a SavedModel folder
(``load_saved_model``, with the ``assets.extra/tfsal.json`` metadata of tfsal's
exporter), or a ``training.fit`` run folder (every model under ``export/<name>/``,
newest version). ``predictor_from_function`` wraps an in-memory model the same way.
"""

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf

from serving import constants
from serving.loaded_model import find_exports
from tfsal import baselines
from tfsal.conventions import LOG_DENSITY
from tfsal.data.targets import model_input

BASELINE_PREFIX = "baseline:"

Predictor = Callable[[np.ndarray], np.ndarray]


def predictor_from_function(
    serve: Callable, input_size: Sequence[int], output: str, resize: str = "pad"
) -> Predictor:
    """Wraps a batch function of the model conventions as ``image -> (H, W) map``.

    Args:
        serve: maps a (1, h, w, 3) float32 RGB batch in [0, 255] to the
            (1, h, w, 1) saliency, or to a dict holding it under ``constants.SALIENCY_OUTPUT`` (a
            SavedModel's ``serve``, a Keras model).
        input_size: the model's (h, w).
        output: "log_density" (exponentiated) or "map".
        resize: how images were fitted to ``input_size`` in training: "pad" or
            "stretch"; the prediction is cropped and resized back accordingly.

    Returns:
        A predictor giving maps at the original image size.
    """
    if output not in constants.OUTPUT_KINDS:
        raise ValueError(
            f"output must be one of {constants.OUTPUT_KINDS}. Received: output={output!r}"
        )
    height, width = (int(v) for v in input_size)

    def predict(image: np.ndarray) -> np.ndarray:
        # The same resizing and padding as the training pipeline's inputs.
        canvas, geometry = model_input(image, (height, width), resize)
        result = serve(canvas[None])
        if isinstance(result, Mapping):
            result = result[constants.SALIENCY_OUTPUT]
        saliency = np.asarray(result, np.float64).reshape(height, width)
        saliency = saliency[geometry.content_window]
        if output == LOG_DENSITY:
            saliency = np.exp(saliency - saliency.max())  # metrics ignore the scale
        original = (image.shape[1], image.shape[0])
        return cv2.resize(saliency, original, interpolation=cv2.INTER_LINEAR)

    return predict


def load_saved_model(path: str | Path) -> Predictor:
    """Loads an exported SavedModel with its ``assets.extra/tfsal.json`` metadata.

    Args:
        path: the SavedModel folder (holding ``saved_model.pb``).

    Returns:
        A predictor giving maps at the original image size.
    """
    path = Path(path)
    metadata_path = path / constants.METADATA_DIR / constants.METADATA_FILE
    if not metadata_path.is_file():
        raise ValueError(
            f"SavedModel {path} has no {constants.METADATA_DIR}/{constants.METADATA_FILE}; "
            "it must say the model's input_size and output kind (export models with "
            "tfsal's exporter)."
        )
    try:
        metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{metadata_path} is not valid JSON ({error}).") from error
    lacking = sorted({"input_size", "output"} - set(metadata))
    if lacking:
        raise ValueError(
            f"{metadata_path} lacks {lacking}; it must give the model's input_size and "
            "output kind (export models with tfsal's exporter)."
        )
    loaded = tf.saved_model.load(str(path))
    if not hasattr(loaded, constants.SERVE_ENDPOINT):
        raise ValueError(f"SavedModel {path} has no '{constants.SERVE_ENDPOINT}' endpoint.")

    def serve(batch):
        # Going through ``loaded`` keeps the SavedModel's variables alive.
        outputs = getattr(loaded, constants.SERVE_ENDPOINT)(tf.constant(batch))
        return {key: value.numpy() for key, value in outputs.items()}

    return predictor_from_function(
        serve, metadata["input_size"], metadata["output"], metadata.get("resize", "pad")
    )


def _saved_models(spec: str) -> dict[str, Path]:
    """The SavedModel folders of a non-baseline ``--model`` value, by display name."""
    path = Path(spec)
    if not (path / "saved_model.pb").is_file() and not (path / "export").is_dir():
        # find_exports would say the same without the baselines, which only this
        # module reads.
        raise ValueError(
            f"Cannot read model {spec!r}: expected baseline:NAME (one of "
            f"{', '.join(baselines.list_baselines())}), a SavedModel folder or a training.fit "
            "run folder with export/."
        )
    return find_exports(path)


def model_names(spec: str) -> list[str]:
    """The display names ``resolve_model(spec)`` gives, found without loading a model.

    Raises:
        ValueError: if ``spec`` is not a baseline, a SavedModel folder or a run folder
            with a SavedModel under ``export/<name>/<version>/``.
    """
    if spec.startswith(BASELINE_PREFIX):
        return [spec]
    return list(_saved_models(spec))


def resolve_model(spec: str, training_records: Callable | None = None) -> dict[str, Predictor]:
    """Turns one ``--model`` value into named predictors.

    Args:
        spec: ``baseline:NAME``, a SavedModel folder, or a ``training.fit`` run folder.
        training_records: returns records to fit ``baseline:fitted-centre-bias`` to.

    Returns:
        Predictors by display name (one per model a run folder holds; the names of
        ``model_names(spec)``).
    """
    if spec.startswith(BASELINE_PREFIX):
        name = spec[len(BASELINE_PREFIX) :]
        records = None
        if name == baselines.FITTED_CENTRE_BIAS and training_records is not None:
            records = training_records()
        return {spec: baselines.get(name, training_records=records)}
    return {name: load_saved_model(path) for name, path in _saved_models(spec).items()}
