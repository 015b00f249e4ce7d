"""A tiny model of the tfsal conventions, exported as a SavedModel the way tfsal's
exporter lays it out (metadata in ``assets.extra/tfsal.json``), for predictor and
evaluation tests."""

import json

import keras

from serving import constants

INPUT_SIZE = (32, 32)


def tiny_log_density_model():
    """A small model of the tfsal conventions: RGB in [0, 255] -> log-density."""
    inputs = keras.Input((*INPUT_SIZE, 3))
    scaled = keras.layers.Rescaling(1 / 255)(inputs)
    logits = keras.layers.Conv2D(1, 5, padding="same", kernel_initializer="ones")(scaled)
    flat = keras.layers.Reshape((INPUT_SIZE[0] * INPUT_SIZE[1],))(logits)
    log_density = keras.layers.Reshape((*INPUT_SIZE, 1))(keras.ops.log_softmax(flat, axis=-1))
    return keras.Model(inputs, {"saliency": log_density}, name="tiny")


def export(model, folder, output="log_density"):
    """Exports ``model`` to ``folder`` with tfsal's metadata; returns ``folder``."""
    model.export(str(folder), format="tf_saved_model", verbose=False)
    metadata = {"model": "tiny", "output": output, "input_size": list(INPUT_SIZE)}
    (folder / constants.METADATA_DIR).mkdir(exist_ok=True)
    (folder / constants.METADATA_DIR / constants.METADATA_FILE).write_text(json.dumps(metadata))
    return folder


def write_run_folder(run):
    """Lays out a ``training.fit`` run folder: a stale version 1 and a real version 2."""
    stale = run / "export" / "tiny" / "1"
    stale.mkdir(parents=True)
    (stale / "saved_model.pb").write_bytes(b"not a model: the newest version must be used")
    export(tiny_log_density_model(), run / "export" / "tiny" / "2")
    return run
